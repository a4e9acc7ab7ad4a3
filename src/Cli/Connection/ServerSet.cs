using ControlPlane.Contracts.Client;
using Grpc.Core;

namespace ControlPlane.Cli.Connection;

/// <summary>
/// The silos named by <c>--server</c> (or the configuration), tried in order: a call that fails
/// with UNAVAILABLE (which is what a refused or dropped connection is) goes to the next silo, and
/// the silo that answered serves the calls after it. Any other status is the answer.
/// </summary>
/// <remarks>
/// A write retried on the next silo may have committed on the first one before its connection
/// dropped: a create then fails ALREADY_EXISTS and an update ABORTED, which apply reports.
/// </remarks>
internal sealed class ServerSet : IDisposable
{
    private readonly string[] _addresses;
    private readonly ControlPlaneClient?[] _clients;
    private readonly TimeSpan _timeout;
    private readonly Lock _lock = new();
    private int _current;

    public ServerSet(IReadOnlyList<string> addresses, TimeSpan timeout)
    {
        if (addresses.Count == 0) throw CliException.Usage("no server: pass --server, set NETCTL_SERVER or write server: in the configuration file");
        _addresses = [.. addresses.Select(Normalize)];
        _clients = new ControlPlaneClient?[_addresses.Length];
        _timeout = timeout;
    }

    public IReadOnlyList<string> Addresses => _addresses;

    /// <summary>Called when a silo did not answer and the next one is tried.</summary>
    public Action<string, string>? FailedOver { get; init; }

    /// <summary>The address of the silo currently in use.</summary>
    public string Current
    {
        get { lock (_lock) return _addresses[_current]; }
    }

    /// <summary>"host:port" → "http://host:port"; "http://…", "https://…" and "unix:/…" stay.</summary>
    public static string Normalize(string address)
    {
        var trimmed = address.Trim();
        if (trimmed.StartsWith("unix:", StringComparison.Ordinal) || trimmed.Contains("://", StringComparison.Ordinal)) return trimmed;
        return "http://" + trimmed;
    }

    /// <summary>A unary call with the configured deadline, failing over on UNAVAILABLE.</summary>
    public Task<T> CallAsync<T>(Func<ControlPlaneClient, CallOptions, Task<T>> call, CancellationToken cancellationToken) =>
        RunAsync((client, token) => call(client, Calls.Within(_timeout, token)), cancellationToken);

    /// <summary>Runs <paramref name="work"/> against the current silo, then the next ones while they are UNAVAILABLE.</summary>
    public async Task<T> RunAsync<T>(Func<ControlPlaneClient, CancellationToken, Task<T>> work, CancellationToken cancellationToken)
    {
        int first;
        lock (_lock) first = _current;
        RpcException? last = null;
        for (var i = 0; i < _addresses.Length; i++)
        {
            var index = (first + i) % _addresses.Length;
            try
            {
                var result = await work(Client(index), cancellationToken);
                lock (_lock) _current = index;
                return result;
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Unavailable && !cancellationToken.IsCancellationRequested)
            {
                last = e;
                if (_addresses.Length > 1) FailedOver?.Invoke(_addresses[index], e.Status.Detail);
            }
        }
        throw new CliException(_addresses.Length == 1
            ? $"server {_addresses[0]} is unavailable: {last!.Status.Detail}"
            : $"no server is available ({string.Join(", ", _addresses)}); last error: {last!.Status.Detail}");
    }

    /// <summary>Moves to the next silo (after a stream broke with UNAVAILABLE).</summary>
    public void Advance()
    {
        lock (_lock) _current = (_current + 1) % _addresses.Length;
    }

    private ControlPlaneClient Client(int index)
    {
        lock (_lock)
        {
            return _clients[index] ??= CreateClient(_addresses[index]);
        }
    }

    private static ControlPlaneClient CreateClient(string address)
    {
        try
        {
            return new ControlPlaneClient(address);
        }
        catch (ArgumentException e)
        {
            throw CliException.Usage($"bad server address: {e.Message}");
        }
    }

    public void Dispose()
    {
        foreach (var client in _clients) client?.Dispose();
    }
}
