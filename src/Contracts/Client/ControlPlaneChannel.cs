using System.Net.Sockets;
using Grpc.Net.Client;

namespace ControlPlane.Contracts.Client;

/// <summary>
/// gRPC channels to the control plane (Grpc.Net.Client): "http://host:port" (HTTP/2 without
/// TLS, prior knowledge), "https://host:port" (mutual TLS with <see cref="ClientTls"/>) or "unix:/path/to/socket". HTTP/2 keepalive pings notice a silo that
/// stopped answering, while a call waits or a watch is idle.
/// </summary>
public static class ControlPlaneChannel
{
    /// <summary>Largest message a client accepts (a full page of objects, a watch event).</summary>
    public const int MaxReceiveMessageSize = 16 * 1024 * 1024;

    public static GrpcChannel Create(string address, int maxConnections = 1, ClientTls? tls = null)
    {
        if (address.StartsWith("unix:", StringComparison.Ordinal))
        {
            return ForUnixSocket(address["unix:".Length..]);
        }
        if (!Uri.TryCreate(address, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
        {
            throw new ArgumentException(Problem(address), nameof(address));
        }
        var handler = Handler(maxConnections);
        if (uri.Scheme == "https") tls?.Apply(handler);
        return GrpcChannel.ForAddress(uri, Options(handler));
    }

    /// <summary>
    /// What is wrong with a setting that names the silos (one address, or several separated by
    /// commas), or null when every address is usable.
    /// </summary>
    public static string? Problem(string addresses)
    {
        var list = FailoverCallInvoker.Split(addresses);
        if (list.Length == 0)
        {
            return "names no silo address";
        }
        foreach (var address in list)
        {
            if (AddressProblem(address) is { } problem)
            {
                return $"'{address}' {problem}";
            }
        }
        return null;
    }

    /// <summary>
    /// What is wrong with one silo address (an item of a list), said without the address, or null
    /// when a client can dial it. A unix socket path may be relative here: the process that dials
    /// it (netctl, an agent, the DNS server) is the one that was given it.
    /// </summary>
    public static string? AddressProblem(string address)
    {
        Uri? uri = null;
        var several = address.Contains(',', StringComparison.Ordinal);
        if (several || (!address.StartsWith("unix:", StringComparison.Ordinal)
            && (!Uri.TryCreate(address, UriKind.Absolute, out uri) || uri.Scheme is not ("http" or "https"))))
        {
            return $"is neither http(s)://host:port nor unix:/path{(several ? " (one address per item)" : "")}";
        }
        if (uri is null)
        {
            return address.Length == "unix:".Length ? "names no socket path (unix:/path)" : null;
        }
        if (uri.UserInfo.Length > 0 || uri.PathAndQuery != "/" || uri.Fragment.Length > 0)
        {
            return "has more than a scheme, host and port (http(s)://host:port)";
        }
        if (!NamesPort(address))
        {
            // Uri would fill in 80 or 443, where no silo listens unless one was put there on purpose.
            return "names no port (http(s)://host:port)";
        }
        if (uri.Port == 0)
        {
            // Port 0 asks a listener for any free port; nothing can be dialled there.
            return "has port 0, on which no silo can be reached (a port is 1 to 65535)";
        }
        return null;
    }

    /// <summary>Whether an http(s) address writes its port out (the host's authority ends in ":digits").</summary>
    private static bool NamesPort(string address)
    {
        var authority = address.AsSpan(address.IndexOf("://", StringComparison.Ordinal) + 3);
        var end = authority.IndexOfAny('/', '?', '#');
        if (end >= 0) authority = authority[..end];
        var colon = authority.LastIndexOf(':');
        return colon > authority.LastIndexOf(']') && colon < authority.Length - 1;
    }

    /// <summary>
    /// What is wrong with an address of a ClusterPeer's spec.addresses, or null when it is
    /// usable: <see cref="AddressProblem"/>, and a unix socket path must be absolute, since every
    /// silo of this cluster dials it from its own working directory. The one rule for the silo's
    /// validation and netctl's client-side validation, so that both refuse the same addresses
    /// (a peer stored with an address no silo can dial would only ever stay unjoined).
    /// </summary>
    public static string? PeerAddressProblem(string address) =>
        AddressProblem(address) ?? (address.StartsWith("unix:", StringComparison.Ordinal) && !address.StartsWith("unix:/", StringComparison.Ordinal)
            ? "has a relative socket path, which each silo would resolve in its own working directory (unix:/path)"
            : null);

    public static GrpcChannel ForUnixSocket(string path)
    {
        var handler = Handler(1);
        handler.ConnectCallback = async (_, cancellationToken) =>
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), cancellationToken).ConfigureAwait(false);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch (SocketException e)
            {
                // Named, since the client's message names only the channel's stand-in authority (localhost:80).
                socket.Dispose();
                // A path with no socket reads as "Cannot assign requested address" (ENOENT mapped to AddressNotAvailable).
                throw new UnixSocketConnectException($"cannot connect to unix:{path}: {(Path.Exists(path) ? e.Message : "no such socket")}", e);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        };
        return GrpcChannel.ForAddress("http://localhost", Options(handler));
    }

    private static SocketsHttpHandler Handler(int maxConnections) => new()
    {
        // Beyond the server's stream limit (or for spreading load) open more connections.
        EnableMultipleHttp2Connections = maxConnections > 1,
        // A silo that stops answering (paused, hung, partitioned away with its connections open)
        // is noticed after about 5 s of silence, well inside the 10 s a CLI call is given, so that
        // a call can still move on to the next silo.
        KeepAlivePingDelay = TimeSpan.FromSeconds(2),
        KeepAlivePingTimeout = TimeSpan.FromSeconds(3),
        KeepAlivePingPolicy = HttpKeepAlivePingPolicy.WithActiveRequests,
        ConnectTimeout = TimeSpan.FromSeconds(5),
        PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
    };

    private static GrpcChannelOptions Options(SocketsHttpHandler handler) => new()
    {
        HttpHandler = handler,
        DisposeHttpClient = true,
        MaxReceiveMessageSize = MaxReceiveMessageSize,
        // After a failed connection the channel itself fails calls at once until its next attempt,
        // and its default backoff grows to 2 minutes: after a long outage a watch retrying every
        // few seconds (ResumableWatch) would find the silo back only at the channel's next try.
        // It tries again within 2 s, so the caller's pacing decides.
        InitialReconnectBackoff = TimeSpan.FromMilliseconds(100),
        MaxReconnectBackoff = TimeSpan.FromSeconds(2),
    };
}
