using System.Buffers.Binary;
using System.Text;
using ControlPlane.Dataplane.Linux.Netlink;

namespace ControlPlane.Dataplane.Linux.Nftables;

/// <summary>
/// One nf_tables transaction: every change between a batch-begin and a batch-end message, sent
/// in one write and applied by the kernel all together or not at all. Only the last change asks
/// for an ACK; a failing change is reported by its sequence number, so the error names it.
/// Elements go many to a message (each message stays under the 64 KiB nest limit).
/// </summary>
public sealed class NftTransaction
{
    private const ushort FRequest = 1, FAck = 4, FExcl = 0x200, FCreate = 0x400, FAppend = 0x800;
    private const int ElementsPerMessageBytes = 48 * 1024;
    private readonly MessageWriter _w = new();
    private readonly List<(uint Sequence, string What)> _descriptions = [];
    private readonly byte _family;
    private readonly string _table;
    private uint _sequence;
    private int _lastOffset = -1;
    private uint _lastSequence;
    private int _elementListStart = -1;
    private (ushort Type, ushort Flags, string Set)? _elementList;

    internal NftTransaction(byte family, string table, uint firstSequence)
    {
        _family = family;
        _table = table;
        _sequence = firstSequence;
        Header(Nft.BatchBegin, FRequest, 0, Nft.SubsysNftables);
        _w.EndMessage();
    }

    /// <summary>Changes queued so far (messages, not elements).</summary>
    public int Count => _descriptions.Count;

    public string Table => _table;

    public NftTransaction AddTable(string? comment = null)
    {
        Begin(Nft.NewTable, FCreate, $"table {_table}");
        _w.AttributeString(Nft.TableName, _table);
        if (comment is not null) _w.Attribute(Nft.TableUserdata, Comment(comment));
        return End();
    }

    public NftTransaction DeleteTable()
    {
        Begin(Nft.DelTable, 0, $"table {_table}");
        _w.AttributeString(Nft.TableName, _table);
        return End();
    }

    public NftTransaction AddChain(string name, NftHook? hook = null)
    {
        Begin(Nft.NewChain, FCreate, $"chain {name}");
        _w.AttributeString(Nft.ChainTable, _table);
        _w.AttributeString(Nft.ChainName, name);
        if (hook is not null)
        {
            _w.BeginNested(Nft.ChainHook | MessageWriter.Nested);
            _w.AttributeBe32(Nft.HookNum, hook.Hook);
            _w.AttributeBe32(Nft.HookPriority, unchecked((uint)hook.Priority));
            _w.EndNested();
            _w.AttributeBe32(Nft.ChainPolicy, hook.AcceptPolicy ? 1u : 0u);
            _w.AttributeString(Nft.ChainType, hook.Type);
        }
        return End();
    }

    /// <summary>Removes every rule of a chain (the chain stays).</summary>
    public NftTransaction FlushChain(string name) => Named(Nft.DelRule, Nft.RuleChain, name, $"flush chain {name}");

    public NftTransaction DeleteChain(string name) => Named(Nft.DelChain, Nft.ChainName, name, $"chain {name}");

    public NftTransaction AddRule(string chain, NftRule rule)
    {
        Begin(Nft.NewRule, FCreate | FAppend, $"rule {rule.Tag} in {chain}");
        _w.AttributeString(Nft.RuleTable, _table);
        _w.AttributeString(Nft.RuleChain, chain);
        _w.Attribute(Nft.RuleExpressions | MessageWriter.Nested, rule.Expressions);
        _w.Attribute(Nft.RuleUserdata, Comment(rule.Tag));
        return End();
    }

    public NftTransaction DeleteRule(string chain, ulong handle)
    {
        Begin(Nft.DelRule, 0, $"rule {handle} in {chain}");
        _w.AttributeString(Nft.RuleTable, _table);
        _w.AttributeString(Nft.RuleChain, chain);
        _w.AttributeBe64(Nft.RuleHandle, handle);
        return End();
    }

    public NftTransaction AddSet(NftSetSpec set)
    {
        Begin(Nft.NewSet, FCreate, $"set {set.Name}");
        _w.AttributeString(Nft.SetTable, _table);
        _w.AttributeString(Nft.SetName, set.Name);
        _w.AttributeBe32(Nft.SetFlagsAttr, set.Flags);
        _w.AttributeBe32(Nft.SetKeyType, set.KeyType);
        _w.AttributeBe32(Nft.SetKeyLen, set.KeyLength);
        if (set.IsMap)
        {
            _w.AttributeBe32(Nft.SetDataType, set.DataType);
            if (!set.IsVerdictMap) _w.AttributeBe32(Nft.SetDataLen, set.DataLength);
        }
        if (set.TimeoutMs > 0) _w.AttributeBe64(Nft.SetTimeoutAttr, set.TimeoutMs);
        if (set.FieldLengths is { Count: > 1 } fields)
        {
            _w.BeginNested(Nft.SetDesc | MessageWriter.Nested);
            _w.BeginNested(Nft.SetDescConcat | MessageWriter.Nested);
            foreach (var length in fields)
            {
                _w.BeginNested(Nft.ListElem | MessageWriter.Nested);
                _w.AttributeBe32(Nft.SetFieldLen, length);
                _w.EndNested();
            }
            _w.EndNested();
            _w.EndNested();
        }
        _w.AttributeU32(Nft.SetId, _sequence); // lets later messages of this batch refer to it
        return End();
    }

    public NftTransaction DeleteSet(string name) => Named(Nft.DelSet, Nft.SetName, name, $"set {name}");

    /// <summary>A message naming one object of the table (every kind's table attribute is 1).</summary>
    private NftTransaction Named(ushort message, ushort nameAttribute, string name, string what)
    {
        Begin(message, 0, what);
        _w.AttributeString(Nft.ChainTable, _table);
        _w.AttributeString(nameAttribute, name);
        return End();
    }

    /// <summary>Adds an element; an identical one already there is fine, one with another value is an error (delete it first).</summary>
    public NftTransaction AddElement(string set, in NftElement element) => Element(Nft.NewSetElem, FCreate, set, element, withData: true);

    public NftTransaction DeleteElement(string set, in NftElement element) => Element(Nft.DelSetElem, 0, set, element, withData: false);

    /// <summary>Deletes an element if present (kernel 6.3+ DESTROYSETELEM): for entries the packet path may already have expired.</summary>
    public NftTransaction DestroyElement(string set, in NftElement element) => Element(Nft.DestroySetElem, 0, set, element, withData: false);

    private NftTransaction Element(ushort type, ushort flags, string set, in NftElement element, bool withData)
    {
        if (_elementList is not { } open || open.Type != type || open.Set != set || _w.Length - _elementListStart > ElementsPerMessageBytes)
        {
            CloseElements();
            Begin(type, flags, $"{(type == Nft.NewSetElem ? "add" : "delete")} elements of {set}");
            _w.AttributeString(Nft.ElemListTable, _table);
            _w.AttributeString(Nft.ElemListSet, set);
            _w.BeginNested(Nft.ElemListElements | MessageWriter.Nested);
            _elementList = (type, flags, set);
            _elementListStart = _w.Length;
        }
        _w.BeginNested(Nft.ListElem | MessageWriter.Nested);
        _w.BeginNested(Nft.ElemKey | MessageWriter.Nested);
        _w.Attribute(Nft.DataValue, element.Key);
        _w.EndNested();
        if (element.KeyEnd is { } end)
        {
            _w.BeginNested(Nft.ElemKeyEnd | MessageWriter.Nested);
            _w.Attribute(Nft.DataValue, end);
            _w.EndNested();
        }
        if (element.Flags != 0) _w.AttributeBe32(Nft.ElemFlags, element.Flags);
        if (withData && element.Verdict is { } verdict)
        {
            _w.BeginNested(Nft.ElemData | MessageWriter.Nested);
            RuleBuilder.WriteVerdict(_w, verdict);
            _w.EndNested();
        }
        else if (withData && element.Data is { } data)
        {
            _w.BeginNested(Nft.ElemData | MessageWriter.Nested);
            _w.Attribute(Nft.DataValue, data);
            _w.EndNested();
        }
        _w.EndNested();
        return this;
    }

    private void CloseElements()
    {
        if (_elementList is null) return;
        _w.EndNested();
        _elementList = null;
        End();
    }

    /// <summary>The whole batch, ready to send; null when it changes nothing.</summary>
    internal (byte[] Bytes, uint LastSequence)? Seal()
    {
        CloseElements();
        if (_descriptions.Count == 0) return null;
        _w.AddFlags(_lastOffset, FAck);
        Header(Nft.BatchEnd, FRequest, 0, Nft.SubsysNftables);
        _w.EndMessage();
        return (_w.Written.ToArray(), _lastSequence);
    }

    internal string Describe(uint sequence)
    {
        foreach (var (s, what) in _descriptions)
        {
            if (s == sequence) return what;
        }
        return "transaction";
    }

    internal uint NextSequence => _sequence;

    private void Begin(ushort message, ushort flags, string what)
    {
        CloseElements();
        _lastOffset = _w.Length;
        _lastSequence = _sequence;
        _descriptions.Add((_sequence, what));
        Header((ushort)((Nft.SubsysNftables << 8) | message), (ushort)(FRequest | flags), _family, 0);
    }

    private NftTransaction End()
    {
        _w.EndMessage();
        return this;
    }

    private void Header(ushort type, ushort flags, byte family, ushort resourceId)
    {
        _w.BeginMessage(type, flags, _sequence++);
        var nfgen = _w.Struct(4);
        nfgen[0] = family;
        BinaryPrimitives.WriteUInt16BigEndian(nfgen[2..], resourceId);
    }

    /// <summary>nft's userdata TLV for a comment (type 0, length, NUL-terminated text), so `nft list` prints it.</summary>
    internal static byte[] Comment(string text)
    {
        var bytes = new byte[text.Length + 3];
        bytes[0] = 0;
        bytes[1] = (byte)(text.Length + 1);
        Encoding.ASCII.GetBytes(text, bytes.AsSpan(2));
        return bytes;
    }

    internal static string? ReadComment(ReadOnlySpan<byte> userdata)
    {
        while (userdata.Length >= 2)
        {
            var length = userdata[1];
            if (2 + length > userdata.Length) return null;
            if (userdata[0] == 0) return Encoding.ASCII.GetString(userdata.Slice(2, length).TrimEnd((byte)0));
            userdata = userdata[(2 + length)..];
        }
        return null;
    }
}
