using ControlPlane.Contracts.Naming;
using ControlPlane.Contracts.V1;
using ControlPlane.Storage.Errors;

namespace ControlPlane.Grains.Resources;

/// <summary>Validation shared by every kind that lists ports.</summary>
internal static class Ports
{
    public static void RequireNumber(string field, uint port)
    {
        if (port is 0 or > 65535) throw ControlPlaneException.Invalid(field, $"{port} is outside 1..65535");
    }

    public static void RequireProtocol(string field, Protocol protocol)
    {
        if (!Enum.IsDefined(protocol)) throw ControlPlaneException.Invalid(field, $"{(int)protocol} is not a known protocol");
    }

    public static void RequireName(string field, string name)
    {
        if (NameRules.PortName(name) is { } error) throw ControlPlaneException.Invalid(field, error);
    }

    public static Protocol Normalize(Protocol protocol) => protocol == Protocol.Unspecified ? Protocol.Tcp : protocol;
}
