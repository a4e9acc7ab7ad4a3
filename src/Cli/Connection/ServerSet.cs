using ControlPlane.Contracts.Client;
using Grpc.Core;

namespace ControlPlane.Cli.Connection;

/// <summary>
/// The silos named by <c>--server</c> (or the configuration), behind one client: each call goes
/// to the silo that last answered and, when that silo is unreachable, to the next ones in turn
/// (<see cref="FailoverCallInvoker"/>, which the agents and DNS servers use too). Any other
/// status is the answer, but for a call the server refused with a retry pushback (its rate limit),
/// which is made again after the pause it asks for, within the call's deadline (<see cref="PushbackRetry"/>).
/// When no silo can be reached the command fails with one message.
/// </summary>
/// <remarks>
/// A write made again on the next silo may have committed on the first one before its connection
/// dropped: a create then fails ALREADY_EXISTS and an update ABORTED, which apply reports.
/// </remarks>
internal sealed class ServerSet : IDisposable
{
    private readonly FailoverCallInvoker _silos;
    private readonly ControlPlaneClient _client;
    private readonly TimeSpan _timeout;

    public ServerSet(IReadOnlyList<string> addresses, TimeSpan timeout, Action<string, string>? failedOver = null, ClientTls? tls = null)
    {
        if (addresses.Count == 0) throw CliException.Usage("no server: pass --server, set NETCTL_SERVER or write server: in the configuration file");
        var normalized = addresses.Select(Normalize).ToArray();
        foreach (var address in normalized)
        {
            if (ControlPlaneChannel.Problem(address) is { } problem) throw CliException.Usage($"bad server address: {problem}");
        }
        _silos = new FailoverCallInvoker(normalized, tls: tls) { FailedOver = failedOver };
        _client = new ControlPlaneClient(_silos, new PushbackRetry());
        _timeout = timeout;
    }

    public IReadOnlyList<string> Addresses => _silos.Addresses;

    /// <summary>The address of the silo currently in use.</summary>
    public string Current => _silos.Current;

    /// <summary>"host:port" → "http://host:port"; "http://…", "https://…" and "unix:/…" stay.</summary>
    public static string Normalize(string address)
    {
        var trimmed = address.Trim();
        if (trimmed.StartsWith("unix:", StringComparison.Ordinal) || trimmed.Contains("://", StringComparison.Ordinal)) return trimmed;
        return "http://" + trimmed;
    }

    /// <summary>A unary call with the configured deadline.</summary>
    public Task<T> CallAsync<T>(Func<ControlPlaneClient, CallOptions, Task<T>> call, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + _timeout;
        return RunAsync((client, token) => call(client, Calls.Within(_timeout, token)), cancellationToken, deadline);
    }

    /// <summary>
    /// Runs <paramref name="work"/>; when no silo can be reached, fails with a <see cref="CliException"/>
    /// saying so. A call whose <paramref name="deadline"/> passed while one silo kept it waiting has
    /// not tried the others: the message says that rather than calling them all unavailable.
    /// </summary>
    public async Task<T> RunAsync<T>(Func<ControlPlaneClient, CancellationToken, Task<T>> work, CancellationToken cancellationToken, DateTime? deadline = null)
    {
        try
        {
            var answer = await work(_client, cancellationToken);
            _answered.TryAdd(_silos.Current, true);
            return answer;
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.Unavailable && !cancellationToken.IsCancellationRequested)
        {
            var late = DateTime.UtcNow >= deadline;
            var reason = Calls.Reason(e);
            // Only a call that never left (no connection was made) is known not to have been
            // carried out; with several servers an earlier attempt may have reached one.
            var mayHaveArrived = late || Addresses.Count > 1 || !NeverSent(e);
            var single = Addresses.Count == 1;
            var message = single
                ? late
                    ? $"{reason} (--timeout {_timeout.TotalSeconds:0.###}s)"
                    : $"server {Addresses[0]} is unavailable: {reason}{(_answered.ContainsKey(Addresses[0]) ? "" : Hint(e.Status.DebugException, Addresses[0]))}"
                : late
                    ? $"{reason}; the call's deadline (--timeout {_timeout.TotalSeconds:0.###}s) passed before it could move on to the next server (the next call goes there first)"
                    : $"no server is available ({string.Join(", ", Addresses)}); last error: {reason}";
            if (mayHaveArrived && single && !late) message += "; the connection ended after the call was sent, so the server may have carried it out";
            throw new SiloUnavailableException(message, mayHaveArrived);
        }
    }

    // Servers that have answered a call of this command: a later failure there is no TLS mistake.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, bool> _answered = new();

    /// <summary>
    /// Whether the call failed before a request could leave: the connection was never made
    /// (refused, no route, a name that does not resolve, a unix socket that is not there, a TLS
    /// handshake that failed). Read from the exceptions' types and socket error codes, never their
    /// text. A reset, or a response that ended, may follow a request the server received.
    /// </summary>
    private static bool NeverSent(RpcException e)
    {
        for (var inner = e.Status.DebugException; inner is not null; inner = inner.InnerException)
        {
            switch (inner)
            {
                case System.Net.Http.HttpRequestException { HttpRequestError: System.Net.Http.HttpRequestError.ConnectionError or System.Net.Http.HttpRequestError.NameResolutionError }:
                case UnixSocketConnectException:
                case System.Security.Authentication.AuthenticationException:
                case System.Net.Sockets.SocketException
                {
                    SocketErrorCode: System.Net.Sockets.SocketError.ConnectionRefused or System.Net.Sockets.SocketError.HostUnreachable
                        or System.Net.Sockets.SocketError.NetworkUnreachable or System.Net.Sockets.SocketError.HostNotFound
                        or System.Net.Sockets.SocketError.NoData or System.Net.Sockets.SocketError.TryAgain or System.Net.Sockets.SocketError.AddressNotAvailable
                }:
                    return true;
            }
        }
        return false;
    }

    /// <summary>
    /// What the two common mistakes behind a failed connection need said, read from the exception's
    /// type (never its text): a TLS handshake that refused the server's certificate (no or the
    /// wrong --ca), and a cleartext address for a port that serves TLS (the server never completes
    /// the HTTP/2 handshake).
    /// </summary>
    private static string Hint(Exception? error, string address)
    {
        // A refusal by our own check is in the reason already; without --ca the system's roots refused it.
        if (ClientTls.CaToCheck(error))
            return $"; {(ClientTls.RefusalIn(error) is null ? "the TLS handshake failed: " : "")}give the cluster CA that issued the server's certificate with --ca";
        if (ClientTls.HandshakeFailed(error)) return string.Empty;
        for (var e = error; e is not null; e = e.InnerException)
        {
            // Connected, then no HTTP/2 (an answer it cannot read, the end of the stream, a reset).
            if (e is System.Net.Http.HttpRequestException { HttpRequestError: not (System.Net.Http.HttpRequestError.ConnectionError or System.Net.Http.HttpRequestError.NameResolutionError) }
                && address.StartsWith("http://", StringComparison.Ordinal))
                return "; if that port serves TLS, use an https:// address with --ca";
        }
        return string.Empty;
    }

    /// <summary>Moves on from <paramref name="server"/> (a watch it ended, as a silo does when it shuts down).</summary>
    public void MoveFrom(string server) => _silos.MoveFrom(server);

    public void Dispose() => _client.Dispose();
}

/// <summary>
/// No server took the call. <see cref="MayHaveArrived"/>: whether a server may have received it
/// before its connection ended, so that a write may have been made (read it back); false only
/// when no connection was made at all.
/// </summary>
internal sealed class SiloUnavailableException(string message, bool mayHaveArrived) : CliException(message)
{
    public bool MayHaveArrived { get; } = mayHaveArrived;
}
