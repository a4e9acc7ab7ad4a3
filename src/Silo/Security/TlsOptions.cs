namespace ControlPlane.Silo.Security;

/// <summary>Mutual TLS on the API port (configuration section "Tls"): all three PEM files, or none (TLS off).</summary>
public sealed class TlsOptions
{
    /// <summary>The silo's certificate (netctl pki issue --role silo).</summary>
    public string Certificate { get; set; } = string.Empty;

    /// <summary>The key of <see cref="Certificate"/>.</summary>
    public string Key { get; set; } = string.Empty;

    /// <summary>The cluster CA (ca.crt) that every client certificate must chain to.</summary>
    public string ClientCa { get; set; } = string.Empty;
}
