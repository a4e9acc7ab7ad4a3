using System.Buffers.Binary;
using System.Text;
using ControlPlane.Dataplane.Linux.Netlink;

namespace ControlPlane.Dataplane.Linux.Nftables;

/// <summary>
/// Builds a rule's expression list the way the kernel takes it (a list of {name, data} nests),
/// one expression per call. Registers are chosen by the caller (<see cref="Nft.Reg"/>): a
/// concatenation is simply consecutive 32-bit registers, each field padded to 4 bytes, so a
/// lookup may take its key from anything loaded into them, map results included.
/// </summary>
public sealed class RuleBuilder
{
    private const ushort MetaDreg = 1, MetaKey = 2;
    private const ushort PayloadDreg = 1, PayloadBase = 2, PayloadOffset = 3, PayloadLen = 4;
    private const ushort CmpSreg = 1, CmpOp = 2, CmpData = 3;
    private const ushort LookupSet = 1, LookupSreg = 2, LookupDreg = 3, LookupFlags = 5;
    private const ushort ImmDreg = 1, ImmData = 2;
    private const ushort NgDreg = 1, NgModulus = 2, NgType = 3;
    private const ushort NatType = 1, NatFamily = 2, NatRegAddrMin = 3, NatRegProtoMin = 5;
    private const ushort RejectType = 1, RejectCode = 2;
    private const ushort CtDreg = 1, CtKey = 2, CtDirection = 3;
    private const ushort BitwiseSreg = 1, BitwiseDreg = 2, BitwiseLen = 3, BitwiseMask = 4, BitwiseXor = 5;
    private const ushort FibDreg = 1, FibResult = 2, FibFlags = 3;
    private const ushort DynsetSetName = 1, DynsetOp = 3, DynsetSregKey = 4, DynsetSregData = 5, DynsetTimeout = 6;

    /// <summary>meta keys.</summary>
    public const uint MetaProtocol = 1, MetaMark = 3, MetaIif = 4, MetaOif = 5, MetaIifName = 6, MetaOifName = 7, MetaNfProto = 15, MetaL4Proto = 16;

    /// <summary>payload bases.</summary>
    public const uint BaseNetwork = 1, BaseTransport = 2;

    public const uint CmpEq = 0, CmpNeq = 1, CmpLte = 3, CmpGte = 5;

    /// <summary>conntrack keys and state bits.</summary>
    public const uint CtState = 0, CtStatus = 2, CtProtoDst = 12, CtDstIp = 20, CtDstIp6 = 22;
    public const uint CtStateInvalid = 1, CtStateEstablished = 2, CtStateRelated = 4, CtStateNew = 8;
    public const uint CtStatusDnat = 0x20;

    public const uint RejectIcmpxUnreach = 2, RejectTcpRst = 1;

    /// <summary>fib: what is looked up (flags) and what it gives (result).</summary>
    public const uint FibSourceAddress = 1, FibInputInterface = 8, FibResultOutputInterface = 1;
    public const byte IcmpxPortUnreach = 1, IcmpxAdminProhibited = 3;

    public const uint DynsetAdd = 0, DynsetUpdate = 1;

    private readonly MessageWriter _w = new();

    public RuleBuilder Meta(uint key, int register)
    {
        Begin("meta");
        _w.AttributeBe32(MetaKey, key);
        _w.AttributeBe32(MetaDreg, Nft.Reg(register));
        return End();
    }

    public RuleBuilder Payload(uint @base, uint offset, uint length, int register)
    {
        Begin("payload");
        _w.AttributeBe32(PayloadDreg, Nft.Reg(register));
        _w.AttributeBe32(PayloadBase, @base);
        _w.AttributeBe32(PayloadOffset, offset);
        _w.AttributeBe32(PayloadLen, length);
        return End();
    }

    public RuleBuilder Cmp(int register, uint op, ReadOnlySpan<byte> data)
    {
        Begin("cmp");
        _w.AttributeBe32(CmpSreg, Nft.Reg(register));
        _w.AttributeBe32(CmpOp, op);
        _w.BeginNested(CmpData | MessageWriter.Nested);
        _w.Attribute(Nft.DataValue, data);
        _w.EndNested();
        return End();
    }

    public RuleBuilder CmpByte(int register, uint op, byte value) => Cmp(register, op, [value]);

    /// <summary>Compares an interface name loaded by meta; a trailing '*' compares only the prefix.</summary>
    public RuleBuilder CmpName(int register, uint op, string name)
    {
        var prefix = name.EndsWith('*');
        var text = prefix ? name[..^1] : name;
        var bytes = new byte[prefix ? text.Length : 16];
        Encoding.ASCII.GetBytes(text, bytes);
        return Cmp(register, op, bytes);
    }

    /// <summary>Set membership (sreg) or a map lookup into dreg (or the verdict register for a verdict map).</summary>
    public RuleBuilder Lookup(string set, int sourceRegister, int? destinationRegister = null, bool verdict = false, bool invert = false)
    {
        Begin("lookup");
        _w.AttributeString(LookupSet, set);
        _w.AttributeBe32(LookupSreg, Nft.Reg(sourceRegister));
        if (verdict) _w.AttributeBe32(LookupDreg, Nft.RegVerdict);
        else if (destinationRegister is { } d) _w.AttributeBe32(LookupDreg, Nft.Reg(d));
        if (invert) _w.AttributeBe32(LookupFlags, 1);
        return End();
    }

    public RuleBuilder Verdict(NftVerdict verdict)
    {
        Begin("immediate");
        _w.AttributeBe32(ImmDreg, Nft.RegVerdict);
        _w.BeginNested(ImmData | MessageWriter.Nested);
        WriteVerdict(_w, verdict);
        _w.EndNested();
        return End();
    }

    /// <summary>A uniformly random number in [0, modulus) into a register (host byte order).</summary>
    public RuleBuilder RandomNumber(uint modulus, int register)
    {
        Begin("numgen");
        _w.AttributeBe32(NgDreg, Nft.Reg(register));
        _w.AttributeBe32(NgModulus, modulus);
        _w.AttributeBe32(NgType, 1);
        return End();
    }

    /// <summary>DNAT to the address in <paramref name="addressRegister"/> and the port in <paramref name="portRegister"/>.</summary>
    public RuleBuilder Dnat(byte family, int addressRegister, int portRegister)
    {
        Begin("nat");
        _w.AttributeBe32(NatType, 1);
        _w.AttributeBe32(NatFamily, family);
        _w.AttributeBe32(NatRegAddrMin, Nft.Reg(addressRegister));
        _w.AttributeBe32(NatRegProtoMin, Nft.Reg(portRegister));
        return End();
    }

    /// <summary>
    /// A route lookup into <paramref name="register"/> (4 bytes): with the source address and input
    /// interface and the output-interface result, the interface the packet's source is reached
    /// through when it must be the one it came in on, or 0 (nft's <c>fib saddr . iif oif</c>).
    /// </summary>
    public RuleBuilder Fib(uint flags, uint result, int register)
    {
        Begin("fib");
        _w.AttributeBe32(FibDreg, Nft.Reg(register));
        _w.AttributeBe32(FibResult, result);
        _w.AttributeBe32(FibFlags, flags);
        return End();
    }

    public RuleBuilder Masquerade()
    {
        Begin("masq");
        return End();
    }

    public RuleBuilder Reject(uint type, byte code = 0)
    {
        Begin("reject");
        _w.AttributeBe32(RejectType, type);
        if (type != RejectTcpRst) _w.AttributeU8(RejectCode, code);
        return End();
    }

    /// <summary>A conntrack field; tuple fields (addresses, ports) need a direction (0 original, 1 reply).</summary>
    public RuleBuilder Ct(uint key, int register, byte? direction = null)
    {
        Begin("ct");
        _w.AttributeBe32(CtKey, key);
        _w.AttributeBe32(CtDreg, Nft.Reg(register));
        if (direction is { } d) _w.AttributeU8(CtDirection, d);
        return End();
    }

    /// <summary>register = (register &amp; mask) ^ 0, for testing bits with a following cmp.</summary>
    public RuleBuilder And(int register, uint mask)
    {
        Begin("bitwise");
        _w.AttributeBe32(BitwiseSreg, Nft.Reg(register));
        _w.AttributeBe32(BitwiseDreg, Nft.Reg(register));
        _w.AttributeBe32(BitwiseLen, 4);
        Span<byte> bytes = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, mask);
        _w.BeginNested(BitwiseMask | MessageWriter.Nested);
        _w.Attribute(Nft.DataValue, bytes);
        _w.EndNested();
        bytes.Clear();
        _w.BeginNested(BitwiseXor | MessageWriter.Nested);
        _w.Attribute(Nft.DataValue, bytes);
        _w.EndNested();
        return End();
    }

    /// <summary>Adds (or refreshes the timeout of) an element of a dynamic set from the packet path; an existing element keeps its value.</summary>
    public RuleBuilder DynamicSet(string set, uint op, int keyRegister, int? dataRegister, ulong timeoutMs)
    {
        Begin("dynset");
        _w.AttributeString(DynsetSetName, set);
        _w.AttributeBe32(DynsetOp, op);
        _w.AttributeBe32(DynsetSregKey, Nft.Reg(keyRegister));
        if (dataRegister is { } d) _w.AttributeBe32(DynsetSregData, Nft.Reg(d));
        if (timeoutMs > 0) _w.AttributeBe64(DynsetTimeout, timeoutMs);
        return End();
    }

    /// <summary>The finished rule; its tag is its identity when the agent reads its table back.</summary>
    public NftRule Build(string tag) => new(_w.Written.ToArray(), tag);

    internal static void WriteVerdict(MessageWriter w, NftVerdict verdict)
    {
        w.BeginNested(Nft.DataVerdict | MessageWriter.Nested);
        w.AttributeBe32(Nft.VerdictCode, unchecked((uint)verdict.Code));
        if (verdict.Chain is { } chain) w.AttributeString(Nft.VerdictChain, chain);
        w.EndNested();
    }

    private void Begin(string name)
    {
        _w.BeginNested(Nft.ListElem | MessageWriter.Nested);
        _w.AttributeString(Nft.ExprName, name);
        _w.BeginNested(Nft.ExprData | MessageWriter.Nested);
    }

    private RuleBuilder End()
    {
        _w.EndNested();
        _w.EndNested();
        return this;
    }
}
