using Grpc.Core;

namespace ControlPlane.Cni;

/// <summary>Error codes: the spec's well-known ones (0–99) and the plugin's (100 and up).</summary>
public static class CniCodes
{
    public const int IncompatibleVersion = 1;
    public const int UnsupportedField = 2;
    public const int UnknownContainer = 3;
    public const int InvalidEnvironment = 4;
    public const int IoFailure = 5;
    public const int DecodingFailure = 6;
    public const int InvalidConfig = 7;
    public const int TryAgainLater = 11;
    public const int NotAvailable = 50;
    public const int NotAvailableLimitedConnectivity = 51;

    /// <summary>
    /// The control plane or the agent refused the request: 100 + the gRPC status code, so the
    /// class of refusal survives (106 ALREADY_EXISTS: a requested address is taken; 103
    /// INVALID_ARGUMENT; 105 NOT_FOUND; 108 RESOURCE_EXHAUSTED: no free address; 109
    /// FAILED_PRECONDITION: e.g. the endpoint name belongs to another container).
    /// </summary>
    public const int RefusedBase = 100;

    /// <summary>CHECK found the attachment changed or missing: interface, address, route or endpoint.</summary>
    public const int CheckFailed = 120;

    /// <summary>ADD found an interface of CNI_IFNAME's name already in the container.</summary>
    public const int InterfaceExists = 121;

    /// <summary>An unexpected failure inside the plugin (its type and message in the details).</summary>
    public const int Internal = 199;

    public static int Refused(StatusCode status) => RefusedBase + (int)status;
}
