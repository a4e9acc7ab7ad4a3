namespace ControlPlane.Contracts;

/// <summary>How a message quotes a caller's value: the silo's errors, netctl's checks and the agents' alike.</summary>
public static class Echo
{
    /// <summary>The most characters of a caller's value a message echoes.</summary>
    public const int MaxLength = 64;

    /// <summary>
    /// <paramref name="value"/> quoted, cut to <see cref="MaxLength"/> characters: an error that
    /// echoes a huge value would outgrow the clients' header limits (grpc-message).
    /// </summary>
    public static string Quote(string value) => value.Length <= MaxLength
        ? $"'{value}'"
        : $"'{value[..MaxLength]}…' ({value.Length} characters)";
}
