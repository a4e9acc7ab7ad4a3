using ControlPlane.Storage;
using ControlPlane.Storage.GrainStorage;
using Google.Protobuf;

namespace ControlPlane.Grains.State;

/// <summary>
/// The persisted state of one API object: its protobuf message (the same bytes the API and the
/// watch send), where it is indexed, and what its next write holds exclusively.
/// </summary>
public sealed class ObjectState<T> : IStoredState where T : class, IMessage<T>, new()
{
    private static readonly MessageParser<T> Parser = new(() => new T());

    /// <summary>The committed object, or null while it does not exist.</summary>
    public T? Value { get; set; }

    public string Namespace { get; set; } = string.Empty;

    public string Index { get; set; } = string.Empty;

    public string? PreviousIndex { get; set; }

    public IReadOnlyList<Claim>? Claims { get; set; }

    public IReadOnlyList<(string Kind, string Key)>? Requires { get; set; }

    public (IReadOnlyList<string> Kinds, string KeyPrefix)? RequiresNone { get; set; }

    public byte[] Encode() => Value!.ToByteArray();

    public void Decode(byte[] data) => Value = Parser.ParseFrom(data);

    public void Reset() => Value = null;
}
