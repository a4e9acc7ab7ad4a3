using Grpc.Core;

namespace ControlPlane.Contracts.Client;

/// <summary>Call options the way the project's clients use them.</summary>
public static class Calls
{
    /// <summary>A call that must finish within <paramref name="timeout"/> (sent as grpc-timeout).</summary>
    public static CallOptions Within(TimeSpan timeout, CancellationToken cancellationToken = default) =>
        new(deadline: DateTime.UtcNow + timeout, cancellationToken: cancellationToken);

    public static CallOptions Until(CancellationToken cancellationToken) => new(cancellationToken: cancellationToken);

    /// <summary>The trailer the control plane sets on every status it chose (its value: the status code).</summary>
    public const string ClassifiedTrailer = "cp-classified";

    /// <summary>
    /// True when the server chose this status (for example DEADLINE_EXCEEDED from a wait that ran
    /// out), not the transport or the client's own deadline.
    /// </summary>
    public static bool IsClassified(RpcException e) => e.Trailers.Get(ClassifiedTrailer) is not null;

    /// <summary>
    /// Why a call failed, in words, for a message: what the connection met on the network when a
    /// socket error is among the status's exceptions (told by its type and error code, never its
    /// text), else the status's own detail. For a port nothing listens on, Grpc.Net.Client's detail
    /// is only "Error connecting to subchannel."
    /// </summary>
    public static string Reason(RpcException e)
    {
        // Our unix-socket connector's own words name the path and what is (not) there.
        if (Inner<UnixSocketConnectException>(e) is { } unix) return unix.Message;
        // And our certificate check's, why the server's certificate was refused.
        if (Inner<ServerCertificateRefusedException>(e) is { } refused) return "the TLS handshake failed: " + refused.Message;
        if (SocketErrorOf(e) is { } socket)
        {
            // A reset can end a connection that carried calls already: no "cannot connect" then.
            if (socket.SocketErrorCode == System.Net.Sockets.SocketError.ConnectionReset) return "the connection was reset";
            return "cannot connect: " + socket.SocketErrorCode switch
            {
                System.Net.Sockets.SocketError.ConnectionRefused => "connection refused (nothing listens on that port)",
                System.Net.Sockets.SocketError.TimedOut => "connection timed out",
                System.Net.Sockets.SocketError.HostUnreachable or System.Net.Sockets.SocketError.NetworkUnreachable => "no route to the host",
                System.Net.Sockets.SocketError.HostNotFound or System.Net.Sockets.SocketError.NoData or System.Net.Sockets.SocketError.TryAgain => "the host name does not resolve",
                _ => socket.Message,
            };
        }
        return e.Status.Detail.Length > 0 ? e.Status.Detail : e.Status.DebugException?.Message ?? e.StatusCode.ToString();
    }

    /// <summary>The socket error among the status's exceptions, if the call failed on one.</summary>
    public static System.Net.Sockets.SocketException? SocketErrorOf(RpcException e) => Inner<System.Net.Sockets.SocketException>(e);

    private static T? Inner<T>(RpcException e) where T : Exception
    {
        for (var inner = e.Status.DebugException; inner is not null; inner = inner.InnerException)
        {
            if (inner is T found) return found;
        }
        return null;
    }
}

/// <summary>A unix socket that could not be connected to; its message names the path and why.</summary>
public sealed class UnixSocketConnectException(string message, Exception inner) : IOException(message, inner);
