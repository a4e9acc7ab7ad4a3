using System.Security.Authentication;

namespace ControlPlane.Contracts.Client;

/// <summary>
/// A server's certificate this client refused, and why (the TLS layer alone only says that a
/// validation callback rejected it). Thrown from the validation, so it travels inside the failed
/// call's exception, where <see cref="Calls.Reason"/> finds it.
/// </summary>
/// <param name="UntrustedIssuer">The certificate does not chain to the CA given: the CA setting is the one to check.</param>
public sealed class ServerCertificateRefusedException(string message, bool untrustedIssuer) : AuthenticationException(message)
{
    public bool UntrustedIssuer { get; } = untrustedIssuer;
}
