namespace ControlPlane.Runtime.Errors;

/// <summary>A classified failure. <see cref="Field"/> names the offending input when there is one.</summary>
public sealed class ControlPlaneException : Exception
{
    public ControlPlaneException(ErrorCode code, string message, string? field = null, Exception? inner = null)
        : base(field is null ? message : $"{field}: {message}", inner)
    {
        Code = code;
        Field = field;
    }

    public ErrorCode Code { get; }

    public string? Field { get; }

    public static ControlPlaneException Invalid(string field, string reason) => new(ErrorCode.InvalidArgument, reason, field);
}
