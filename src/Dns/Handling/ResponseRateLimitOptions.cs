namespace ControlPlane.Dns.Handling;

/// <summary>Response rate limiting of UDP answers (configuration section "Dns:RateLimit"); off unless <see cref="ResponsesPerSecond"/> is set.</summary>
public sealed class ResponseRateLimitOptions
{
    /// <summary>Identical responses per second one client prefix may receive; 0 turns limiting off.</summary>
    public int ResponsesPerSecond { get; set; }

    /// <summary>The longest a client prefix's excess is remembered: a flood that stops is forgiven within this time.</summary>
    public TimeSpan Window { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>Every Slip-th limited response is sent truncated (TC, no records) instead of dropped, so a real client retries over TCP; 0 drops them all, 1 truncates them all.</summary>
    public int Slip { get; set; } = 2;

    /// <summary>IPv4 clients are counted together per prefix of this length.</summary>
    public int IPv4PrefixLength { get; set; } = 24;

    /// <summary>IPv6 clients are counted together per prefix of this length.</summary>
    public int IPv6PrefixLength { get; set; } = 56;

    /// <summary>Entries in the table (rounded up to a power of two); a newer key takes over an older one's slot.</summary>
    public int TableSize { get; set; } = 65_536;

    public IEnumerable<string> Validate()
    {
        if (ResponsesPerSecond < 0) yield return "Dns:RateLimit:ResponsesPerSecond must not be negative";
        if (Window <= TimeSpan.Zero) yield return "Dns:RateLimit:Window must be positive";
        if (Slip < 0) yield return "Dns:RateLimit:Slip must not be negative";
        if (IPv4PrefixLength is < 0 or > 32) yield return "Dns:RateLimit:IPv4PrefixLength must lie in 0..32";
        if (IPv6PrefixLength is < 0 or > 128) yield return "Dns:RateLimit:IPv6PrefixLength must lie in 0..128";
        if (TableSize is < 1 or > 1 << 24) yield return "Dns:RateLimit:TableSize must lie in 1..16777216";
    }
}
