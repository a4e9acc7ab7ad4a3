namespace ControlPlane.Silo.Security;

/// <summary>Per-client limits of the API (configuration section "Limits"); 0 turns a limit off.</summary>
public sealed class LimitsOptions
{
    /// <summary>Calls per second each client may make on average (a token bucket per client).</summary>
    public double RequestsPerSecond { get; set; }

    /// <summary>Calls a client may make at once after being idle; 0 means one second's worth.</summary>
    public int Burst { get; set; }

    /// <summary>Watch streams each client may hold open at once.</summary>
    public int WatchesPerClient { get; set; }

    /// <summary>Most clients tracked; idle ones are forgotten first (losing nothing).</summary>
    public int MaxClients { get; set; } = 65_536;

    /// <summary>The burst in effect.</summary>
    public double EffectiveBurst => Burst > 0 ? Burst : Math.Max(1, RequestsPerSecond);

    public IEnumerable<string> Validate()
    {
        if (RequestsPerSecond < 0 || double.IsNaN(RequestsPerSecond)) yield return "Limits:RequestsPerSecond must not be negative";
        if (Burst < 0) yield return "Limits:Burst must not be negative";
        if (WatchesPerClient < 0) yield return "Limits:WatchesPerClient must not be negative";
        if (MaxClients < 1) yield return "Limits:MaxClients must be positive";
    }
}
