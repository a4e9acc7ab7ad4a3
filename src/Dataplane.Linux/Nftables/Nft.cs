namespace ControlPlane.Dataplane.Linux.Nftables;

/// <summary>
/// The nf_tables netlink vocabulary (include/uapi/linux/netfilter/nf_tables.h), as far as the
/// agent uses it. Integers inside nf_tables attributes are big-endian; register contents keep the
/// byte order of what was loaded (packet fields network order, meta/ct/numgen host order).
/// </summary>
public static class Nft
{
    public const byte FamilyInet = 1, FamilyIpv4 = 2, FamilyIpv6 = 10;
    internal const ushort SubsysNftables = 10;
    internal const ushort BatchBegin = 0x10, BatchEnd = 0x11;

    internal const ushort NewTable = 0, GetTable = 1, DelTable = 2, NewChain = 3, GetChain = 4, DelChain = 5,
        NewRule = 6, GetRule = 7, DelRule = 8, NewSet = 9, GetSet = 10, DelSet = 11,
        NewSetElem = 12, GetSetElem = 13, DelSetElem = 14, DestroySetElem = 30;

    internal const ushort TableName = 1, TableFlags = 2, TableHandle = 4, TableUserdata = 6;
    internal const ushort ChainTable = 1, ChainHandle = 2, ChainName = 3, ChainHook = 4, ChainPolicy = 5, ChainType = 7;
    internal const ushort HookNum = 1, HookPriority = 2;
    internal const ushort RuleTable = 1, RuleChain = 2, RuleHandle = 3, RuleExpressions = 4, RuleUserdata = 7;
    internal const ushort ListElem = 1, ExprName = 1, ExprData = 2;
    internal const ushort SetTable = 1, SetName = 2, SetFlagsAttr = 3, SetKeyType = 4, SetKeyLen = 5, SetDataType = 6,
        SetDataLen = 7, SetDesc = 9, SetId = 10, SetTimeoutAttr = 11, SetUserdata = 13;
    internal const ushort SetDescConcat = 2, SetFieldLen = 1;
    internal const ushort ElemListTable = 1, ElemListSet = 2, ElemListElements = 3;
    internal const ushort ElemKey = 1, ElemData = 2, ElemFlags = 3, ElemTimeout = 4, ElemKeyEnd = 10;
    internal const ushort DataValue = 1, DataVerdict = 2, VerdictCode = 1, VerdictChain = 2;

    /// <summary>Set flags.</summary>
    public const uint SetConstant = 0x2, SetInterval = 0x4, SetMap = 0x8, SetTimeout = 0x10, SetEval = 0x20, SetConcat = 0x80;

    /// <summary>Element flag: the end of an interval (rbtree sets).</summary>
    public const uint ElementIntervalEnd = 0x1;

    /// <summary>A map whose values are verdicts.</summary>
    public const uint DataTypeVerdict = 0xffffff00;

    /// <summary>nft's datatype ids (only for `nft list` to print the sets readably).</summary>
    public const uint TypeVerdict = 1, TypeInteger = 4, TypeIpAddr = 7, TypeIp6Addr = 8, TypeInetProto = 12, TypeInetService = 13, TypeMark = 19, TypeIfName = 41;

    /// <summary>nft's id for a concatenated type: each field shifts in 6 bits.</summary>
    public static uint Concat(params uint[] types)
    {
        uint id = 0;
        foreach (var type in types) id = (id << 6) | type;
        return id;
    }

    /// <summary>Verdict codes.</summary>
    public const int Drop = 0, Accept = 1, Continue = -1, Break = -2, Jump = -3, Goto = -4, Return = -5;

    /// <summary>Netfilter hooks.</summary>
    public const uint HookPrerouting = 0, HookInput = 1, HookForward = 2, HookOutput = 3, HookPostrouting = 4;

    /// <summary>The 32-bit registers 0..15 (NFT_REG32_00 = 8); the verdict register is 0.</summary>
    public static uint Reg(int index) => (uint)(8 + index);

    public const uint RegVerdict = 0;
}

/// <summary>A verdict: a code, and the chain for jump/goto.</summary>
public readonly record struct NftVerdict(int Code, string? Chain = null)
{
    public static NftVerdict GotoChain(string chain) => new(Nft.Goto, chain);

    public static NftVerdict JumpChain(string chain) => new(Nft.Jump, chain);

    public override string ToString() => Chain is null ? Code.ToString(System.Globalization.CultureInfo.InvariantCulture) : $"{(Code == Nft.Goto ? "goto" : "jump")} {Chain}";
}

/// <summary>A base chain's attachment.</summary>
public sealed record NftHook(uint Hook, int Priority, string Type, bool AcceptPolicy = true);

/// <summary>A named set or map. Key and data lengths are in bytes (each concatenated field padded to 4).</summary>
public sealed record NftSetSpec(string Name, uint Flags, uint KeyType, uint KeyLength,
    uint DataType = 0, uint DataLength = 0, ulong TimeoutMs = 0, IReadOnlyList<uint>? FieldLengths = null)
{
    public bool IsMap => (Flags & Nft.SetMap) != 0;

    public bool IsVerdictMap => IsMap && DataType == Nft.DataTypeVerdict;
}

/// <summary>One element: a key (and the end of its range for interval concatenations), and for maps a value or a verdict.</summary>
public readonly record struct NftElement(byte[] Key, byte[]? Data = null, NftVerdict? Verdict = null, byte[]? KeyEnd = null, uint Flags = 0);

/// <summary>A rule as the kernel stores it: its encoded expressions and a tag (userdata) naming it.</summary>
public sealed record NftRule(byte[] Expressions, string Tag);

/// <summary>A rule read back from the kernel.</summary>
public sealed record NftRuleInfo(string Chain, ulong Handle, string? Tag);

/// <summary>A chain read back from the kernel.</summary>
public sealed record NftChainInfo(string Name, NftHook? Hook);
