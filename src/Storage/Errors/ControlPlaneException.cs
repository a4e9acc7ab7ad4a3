namespace ControlPlane.Storage.Errors;

/// <summary>
/// A classified failure. <see cref="Field"/> names the offending input when there is one. The
/// message is for people; callers branch on <see cref="Code"/> only. Serializable by Orleans, so
/// it reaches a caller on another silo (or a client) as the same type.
/// </summary>
[GenerateSerializer]
[Alias("controlplane.ControlPlaneException")]
public sealed class ControlPlaneException : Exception
{
    /// <summary>Longest echo of a caller's value inside a message.</summary>
    public const int MaxEcho = 64;

    /// <param name="inner">
    /// The cause, for the log. A driver's exception (Npgsql's has no Orleans codec) is kept as a
    /// plain exception that reads the same, so the classified error itself always crosses a
    /// silo boundary; a classified cause is kept as it is.
    /// </param>
    public ControlPlaneException(ErrorCode code, string message, string? field = null, Exception? inner = null)
        : base(field is null ? message : $"{field}: {message}", inner is null or ControlPlaneException ? inner : new Exception(inner.ToString()))
    {
        Code = code;
        Field = field;
    }

    [Id(0)]
    public ErrorCode Code { get; init; }

    [Id(1)]
    public string? Field { get; init; }

    public static ControlPlaneException Invalid(string field, string reason) => new(ErrorCode.InvalidArgument, reason, field);

    /// <summary>
    /// A caller's value quoted for a message, cut to <see cref="MaxEcho"/> characters: an error
    /// that echoes a huge value would outgrow the clients' header limits (grpc-message).
    /// Contracts' <c>Echo.Quote</c> quotes the same way for the rules shared with netctl (the
    /// storage layer references nothing of ours).
    /// </summary>
    public static string Quote(string value) => value.Length <= MaxEcho
        ? $"'{value}'"
        : $"'{value[..MaxEcho]}…' ({value.Length} characters)";
}
