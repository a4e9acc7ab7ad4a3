namespace ControlPlane.Cni;

/// <summary>
/// A failure the plugin reports to the runtime as the spec's error object (code, msg, details)
/// on stdout with exit code 1. Codes below 100 are the spec's (<see cref="CniCodes"/>); the
/// plugin's own start at 100.
/// </summary>
public sealed class CniException(int code, string message, string details = "") : Exception(message)
{
    public int Code { get; } = code;

    public string Details { get; } = details;
}
