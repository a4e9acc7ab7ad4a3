namespace ControlPlane.Dns.Wire;

/// <summary>Response codes (RFC 1035 §4.1.1; BADVERS from RFC 6891 is extended, 16).</summary>
public enum Rcode : byte
{
    NoError = 0,
    FormErr = 1,
    ServFail = 2,
    NXDomain = 3,
    NotImp = 4,
    Refused = 5,
    /// <summary>A signed message this server cannot verify (RFC 8945 §5.2).</summary>
    NotAuth = 9,
}
