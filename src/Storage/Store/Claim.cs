namespace ControlPlane.Storage;

/// <summary>
/// Something an object holds exclusively: an interval [<see cref="Low"/>, <see cref="High"/>]
/// of byte strings within a <see cref="Scope"/> (an address of a network, a virtual IP, a VNI, a
/// range of addresses). The store refuses a write whose claims overlap another object's claims in
/// the same scope, so two objects can never hold one thing, whatever happens in memory (a
/// duplicate activation, an allocator rebuilt while a release was in flight). Bounds compare as
/// unsigned big-endian byte strings; all claims of one scope must use one length.
/// </summary>
[GenerateSerializer]
[Alias("controlplane.Claim")]
public sealed record Claim([property: Id(0)] string Scope, [property: Id(1)] byte[] Low, [property: Id(2)] byte[] High)
{
    /// <summary>A claim of one value.</summary>
    public static Claim Of(string scope, byte[] value) => new(scope, value, value);

    /// <summary>
    /// Where the claims that refer to an object live: the store refuses to delete an object while
    /// any claim of this scope is held (by another object), and a create that refers to an object
    /// holds one here, its own kind and key as the value (unique, so referrers never collide).
    /// </summary>
    public static string ReferenceScope(string kind, string key) => $"{ReferenceScopePrefix}{kind}/{key}";

    public const string ReferenceScopePrefix = "ref/";

    /// <summary>The least string above every string that starts with <paramref name="prefix"/> (ordinal): its last character plus one.</summary>
    public static string PrefixEnd(string prefix) => prefix[..^1] + (char)(prefix[^1] + 1);

    /// <summary>The claim with which the object <paramref name="holderKind"/>/<paramref name="holderKey"/> refers to another.</summary>
    public static Claim Reference(string kind, string key, string holderKind, string holderKey) =>
        Of(ReferenceScope(kind, key), System.Text.Encoding.UTF8.GetBytes($"{holderKind}/{holderKey}"));

    /// <summary>How people read it in an error: the value, or "low..high".</summary>
    public string Describe() => Low.AsSpan().SequenceEqual(High)
        ? Display(Low)
        : $"{Display(Low)}..{Display(High)}";

    private static string Display(byte[] value) => value.Length switch
    {
        16 => new System.Net.IPAddress(value) is var a && a.IsIPv4MappedToIPv6 ? a.MapToIPv4().ToString() : new System.Net.IPAddress(value).ToString(),
        4 => System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(value).ToString(System.Globalization.CultureInfo.InvariantCulture),
        _ => Convert.ToHexString(value),
    };
}
