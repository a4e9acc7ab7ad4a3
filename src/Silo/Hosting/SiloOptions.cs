namespace ControlPlane.Silo.Hosting;

/// <summary>Settings of the silo host (configuration section "Silo").</summary>
public sealed class SiloOptions
{
    /// <summary>Where the embedded store keeps its database file (controlplane.db); locked while the silo runs.</summary>
    public string DataDirectory { get; set; } = "data";

    /// <summary>Address the gRPC API listens on (HTTP/2 with prior knowledge; /healthz too).</summary>
    public string ListenAddress { get; set; } = "127.0.0.1";

    /// <summary>TCP port of the API; 0 picks a free one (logged at start).</summary>
    public int Port { get; set; } = 7070;

    /// <summary>When above 0, also serves GET /healthz over HTTP/1.1 on this port (for plain HTTP probes).</summary>
    public int HealthPort { get; set; }

    /// <summary>Also listen on this unix socket path when set.</summary>
    public string UnixSocket { get; set; } = string.Empty;

    /// <summary>Largest request message accepted, in bytes.</summary>
    public int MaxReceiveMessageSize { get; set; } = 4 * 1024 * 1024;

    /// <summary>fsync every commit (survives power loss) instead of only process death.</summary>
    public bool SynchronousFull { get; set; }

    /// <summary>Bookmark interval for watches that do not ask for one.</summary>
    public TimeSpan DefaultBookmarkInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Live changes queued for one watch stream before it stops queueing and catches up from the
    /// change log instead (a slow client holds at most this many changes in the silo).
    /// </summary>
    public int WatchBuffer { get; set; } = Storage.Changes.ChangeHub.DefaultCapacity;
}
