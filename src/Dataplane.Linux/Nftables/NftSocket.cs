using System.Buffers.Binary;
using ControlPlane.Dataplane.Linux.Netlink;

namespace ControlPlane.Dataplane.Linux.Nftables;

/// <summary>
/// nf_tables over its own netlink socket (NETLINK_NETFILTER), for one table: transactions in,
/// the table's chains, rules, sets and elements out. No `nft` process, no listing of the
/// ruleset per change: a change costs what its own messages cost.
/// </summary>
public sealed class NftSocket : IDisposable
{
    private const ushort FRequest = 1, FAck = 4, FDump = 0x300;
    private readonly NetlinkSocket _socket;
    private int _buffer = 4 * 1024 * 1024;

    private NftSocket(NetlinkSocket socket, byte family, string table)
    {
        _socket = socket;
        Family = family;
        Table = table;
        _socket.ForceBuffers(_buffer);
    }

    public byte Family { get; }

    public string Table { get; }

    public static NftSocket Open(string table, byte family = Nft.FamilyInet) => new(NetlinkSocket.Open(NetlinkSocket.NetlinkNetfilter), family, table);

    public NftTransaction Begin() => new(Family, Table, _socket.NextSequence() + 1);

    /// <summary>Sends the transaction; the kernel applies all of it or none. Throws the first refusal, naming the change.</summary>
    public void Commit(NftTransaction transaction)
    {
        if (transaction.Seal() is not { } sealedBatch) return;
        // Keep the socket's sequence ahead of the numbers the transaction used.
        while (_socket.NextSequence() < transaction.NextSequence) { }
        if (sealedBatch.Bytes.Length + 4096 > _buffer)
        {
            _buffer = Math.Max(_buffer * 2, sealedBatch.Bytes.Length * 2);
            _socket.ForceBuffers(_buffer);
        }
        var failures = _socket.Transact(sealedBatch.Bytes, sealedBatch.LastSequence);
        if (failures.Count > 0)
        {
            var (sequence, errno, reason) = failures[0];
            throw new NetlinkException(errno, transaction.Describe(sequence), reason);
        }
    }

    /// <summary>Whether the table exists, and its comment.</summary>
    public (bool Exists, string? Comment) GetTable()
    {
        var found = false;
        string? comment = null;
        try
        {
            Dump(Nft.GetTable, w => w.AttributeString(Nft.TableName, Table), (in Attributes a) =>
            {
                if (a.String(Nft.TableName) != Table) return;
                found = true;
                comment = a.TryGet(Nft.TableUserdata, out var u) ? NftTransaction.ReadComment(u) : null;
            });
        }
        catch (NetlinkException e) when (e.IsNotFound)
        {
        }
        return (found, comment);
    }

    public List<NftChainInfo> ListChains()
    {
        var chains = new List<NftChainInfo>();
        Dump(Nft.GetChain, w => w.AttributeString(Nft.ChainTable, Table), (in Attributes a) =>
        {
            if (a.String(Nft.ChainTable) != Table || a.String(Nft.ChainName) is not { } name) return;
            NftHook? hook = null;
            if (a.TryGet(Nft.ChainHook, out var h))
            {
                var ha = new Attributes(h);
                hook = new NftHook(ha.Be32(Nft.HookNum) ?? 0, unchecked((int)(ha.Be32(Nft.HookPriority) ?? 0)), a.String(Nft.ChainType) ?? "", (a.Be32(Nft.ChainPolicy) ?? 1) == 1);
            }
            chains.Add(new NftChainInfo(name, hook));
        });
        return chains;
    }

    /// <summary>Every rule of the table in chain order, with its handle and tag.</summary>
    public List<NftRuleInfo> ListRules()
    {
        var rules = new List<NftRuleInfo>();
        Dump(Nft.GetRule, w => w.AttributeString(Nft.RuleTable, Table), (in Attributes a) =>
        {
            if (a.String(Nft.RuleTable) != Table || a.String(Nft.RuleChain) is not { } chain) return;
            var tag = a.TryGet(Nft.RuleUserdata, out var u) ? NftTransaction.ReadComment(u) : null;
            rules.Add(new NftRuleInfo(chain, a.Be64(Nft.RuleHandle) ?? 0, tag));
        });
        return rules;
    }

    public List<NftSetSpec> ListSets()
    {
        var sets = new List<NftSetSpec>();
        Dump(Nft.GetSet, w => w.AttributeString(Nft.SetTable, Table), (in Attributes a) =>
        {
            if (a.String(Nft.SetTable) != Table || a.String(Nft.SetName) is not { } name) return;
            sets.Add(new NftSetSpec(name, a.Be32(Nft.SetFlagsAttr) ?? 0, a.Be32(Nft.SetKeyType) ?? 0, a.Be32(Nft.SetKeyLen) ?? 0,
                a.Be32(Nft.SetDataType) ?? 0, a.Be32(Nft.SetDataLen) ?? 0, a.Be64(Nft.SetTimeoutAttr) ?? 0));
        });
        return sets;
    }

    /// <summary>Every element of a set (values and verdicts of maps included).</summary>
    public List<NftElement> ListElements(string set)
    {
        var elements = new List<NftElement>();
        Dump(Nft.GetSetElem, w =>
        {
            w.AttributeString(Nft.ElemListTable, Table);
            w.AttributeString(Nft.ElemListSet, set);
        }, (in Attributes a) =>
        {
            if (!a.TryGet(Nft.ElemListElements, out var list)) return;
            while (Attributes.Next(ref list, out _, out var element))
            {
                var e = new Attributes(element);
                if (!e.TryGet(Nft.ElemKey, out var key) || !new Attributes(key).TryGet(Nft.DataValue, out var keyValue)) continue;
                byte[]? keyEnd = e.TryGet(Nft.ElemKeyEnd, out var end) && new Attributes(end).TryGet(Nft.DataValue, out var endValue) ? endValue.ToArray() : null;
                byte[]? data = null;
                NftVerdict? verdict = null;
                if (e.TryGet(Nft.ElemData, out var d))
                {
                    var da = new Attributes(d);
                    if (da.TryGet(Nft.DataValue, out var value)) data = value.ToArray();
                    else if (da.TryGet(Nft.DataVerdict, out var v))
                    {
                        var va = new Attributes(v);
                        verdict = new NftVerdict(unchecked((int)(va.Be32(Nft.VerdictCode) ?? 0)), va.String(Nft.VerdictChain));
                    }
                }
                elements.Add(new NftElement(keyValue.ToArray(), data, verdict, keyEnd, e.Be32(Nft.ElemFlags) ?? 0));
            }
        });
        return elements;
    }

    /// <summary>Whether the set holds an element with this key, or (interval sets) a range containing it: the kernel looks it up, nothing is dumped.</summary>
    public bool ContainsElement(string set, byte[] key)
    {
        var found = false;
        try
        {
            Request(Nft.GetSetElem, FRequest | FAck, w =>
            {
                w.AttributeString(Nft.ElemListTable, Table);
                w.AttributeString(Nft.ElemListSet, set);
                w.BeginNested(Nft.ElemListElements | MessageWriter.Nested);
                w.BeginNested(Nft.ListElem | MessageWriter.Nested);
                w.BeginNested(Nft.ElemKey | MessageWriter.Nested);
                w.Attribute(Nft.DataValue, key);
                w.EndNested();
                w.EndNested();
                w.EndNested();
            }, (in Attributes _) => found = true);
        }
        catch (NetlinkException e) when (e.IsNotFound)
        {
            return false;
        }
        return found;
    }

    private delegate void AttributesHandler(in Attributes attributes);

    private void Dump(ushort message, Action<MessageWriter> attributes, AttributesHandler handler) =>
        Request(message, FRequest | FDump, attributes, handler);

    /// <summary>One request; every reply message's attributes go to <paramref name="handler"/> until the dump ends or the ACK comes.</summary>
    private void Request(ushort message, ushort flags, Action<MessageWriter> attributes, AttributesHandler handler)
    {
        var w = new MessageWriter();
        var sequence = _socket.NextSequence();
        w.BeginMessage((ushort)((Nft.SubsysNftables << 8) | message), flags, sequence);
        var nfgen = w.Struct(4);
        nfgen[0] = Family;
        BinaryPrimitives.WriteUInt16BigEndian(nfgen[2..], 0);
        attributes(w);
        w.EndMessage();
        _socket.Dump(w.Written, sequence, (_, payload) =>
        {
            if (payload.Length < 4) return;
            handler(new Attributes(payload[4..]));
        });
    }

    public void Dispose() => _socket.Dispose();
}
