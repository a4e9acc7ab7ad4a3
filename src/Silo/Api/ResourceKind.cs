using System.Globalization;
using ControlPlane.Contracts.V1;
using ControlPlane.Storage;
using Google.Protobuf;

namespace ControlPlane.Silo.Api;

/// <summary>How the API presents one stored kind: its wire enum, message type and place in a WatchEvent.</summary>
public interface IResourceKind
{
    Kind Kind { get; }

    string Name { get; }

    bool Namespaced { get; }

    /// <summary>
    /// The WatchEvent of a change without its resume token, serialised. Cached on the change, so
    /// a change fanned out to many watchers is encoded once.
    /// </summary>
    byte[] EncodeEventHead(Change change, EventType type);

    /// <summary>True for the kinds node agents program (their status carries ProgrammedStatus).</summary>
    bool Programmable { get; }

    /// <summary>A PROGRAMMED event for one revision of an object: its metadata only.</summary>
    byte[] EncodeProgrammed(string key, long revision);
}

/// <param name="programmable">Node agents program objects of this kind (PROGRAMMED events, WaitProgrammed).</param>
/// <param name="programmed">Sets (or, given null, clears) status.programmed, for programmable kinds with a status.</param>
public sealed class ResourceKind<T>(Kind kind, string name, bool namespaced, Func<T, ObjectMeta> meta, Action<WatchEvent, T> place,
    bool programmable = false, Action<T, ProgrammedStatus?>? programmed = null)
    : IResourceKind where T : class, IMessage<T>, new()
{
    private static readonly MessageParser<T> Parser = new(() => new T());

    public Kind Kind { get; } = kind;

    public string Name { get; } = name;

    public bool Namespaced { get; } = namespaced;

    public MessageParser<T> MessageParser => Parser;

    public bool Programmable => programmable;

    /// <summary>Whether objects of this kind carry status.programmed (computed on Get).</summary>
    public bool ShowsProgrammed => programmed is not null;

    /// <summary>Sets status.programmed (null clears it: it is computed on Get, never stored).</summary>
    public void SetProgrammed(T resource, ProgrammedStatus? status) => programmed?.Invoke(resource, status);

    public byte[] EncodeProgrammed(string key, long revision)
    {
        var resource = new T();
        var m = meta(resource);
        var slash = key.IndexOf('/');
        (m.Namespace, m.Name) = slash < 0 ? (string.Empty, key) : (key[..slash], key[(slash + 1)..]);
        m.Etag = revision.ToString(CultureInfo.InvariantCulture);
        var watchEvent = new WatchEvent { Type = EventType.Programmed, Kind = Kind };
        place(watchEvent, resource);
        return watchEvent.ToByteArray();
    }

    public ObjectMeta MetaOf(T resource) => meta(resource);

    /// <summary>The stored object as the API shows it: with its etag.</summary>
    public T Decode(byte[] data, long revision)
    {
        var resource = Parser.ParseFrom(data);
        meta(resource).Etag = revision.ToString(CultureInfo.InvariantCulture);
        return resource;
    }

    public byte[] EncodeEventHead(Change change, EventType type)
    {
        if (change.EncodingCache is byte[] cached)
        {
            return cached;
        }
        var watchEvent = new WatchEvent { Type = type, Kind = Kind };
        place(watchEvent, Decode(change.Data, change.Revision));
        var encoded = watchEvent.ToByteArray();
        change.EncodingCache = encoded;
        return encoded;
    }
}
