using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.V1;
using ControlPlane.Grains.ClusterSet;
using Grpc.Core;

namespace ControlPlane.Silo.ClusterSet;

/// <summary>
/// Clients of peer clusters' APIs: the same API every client uses, with failover over the
/// peer's silo addresses and, for https:// addresses, this cluster's client certificate.
/// </summary>
public sealed class PeerClients(ClusterSetOptions options) : IPeerProbe
{
    private readonly ClientTls? _tls = options.Ca.Length > 0
        ? ClientTls.FromOptions(options.Ca, options.Certificate, options.Key, ("ClusterSet:Ca", "ClusterSet:Certificate", "ClusterSet:Key"), out _)
        : null;

    public ControlPlaneClient Connect(IReadOnlyList<string> addresses) => new(string.Join(',', addresses), 1, _tls);

    public async Task<(PeerView? View, string? Problem)> ReadAsync(IReadOnlyList<string> addresses, TimeSpan timeout)
    {
        using var client = Connect(addresses);
        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            return (await ReadAsync(client, deadline.Token).ConfigureAwait(false), null);
        }
        catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable && !deadline.IsCancellationRequested)
        {
            // Refused or unreachable at once: say so, not that the time ran out.
            return (null, $"no silo at spec.addresses answered: {Diagnosis(e)}");
        }
        catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded or StatusCode.Cancelled)
        {
            return (null, $"no silo at spec.addresses answered within {timeout.TotalSeconds:0.#} s");
        }
        catch (RpcException e)
        {
            // Something answered, but not as a control plane that lets this one read it (another
            // server, or a refused certificate): it may change there, so the peer is kept.
            return (null, $"spec.addresses did not answer as a control plane: {e.StatusCode}: {Diagnosis(e)}");
        }
        catch (OperationCanceledException)
        {
            return (null, $"no silo at spec.addresses answered within {timeout.TotalSeconds:0.#} s");
        }
    }

    public Task<ClusterInfo?[]> IdentifyEachAsync(IReadOnlyList<string> addresses, TimeSpan timeout) =>
        Task.WhenAll(addresses.Select(async address =>
        {
            using var client = Connect([address]);
            try
            {
                return await client.GetClusterInfoAsync(Calls.Within(timeout)).ConfigureAwait(false);
            }
            catch (RpcException)
            {
                return null;
            }
        }));

    /// <summary>Longest diagnosis kept in a peer's condition.</summary>
    private const int MaxDiagnosis = 512;

    /// <summary>
    /// Why a call to a peer failed, as this silo's client saw it (the connection's exceptions in
    /// turn, or the peer's status message): this silo's own diagnosis, not a caller's value, so it
    /// is kept whole up to <see cref="MaxDiagnosis"/> characters; the cause is usually at its end
    /// (a certificate chain that does not verify, a server that spoke no HTTP/2). A TLS failure
    /// names the settings to check.
    /// </summary>
    private static string Diagnosis(RpcException e)
    {
        var text = Calls.Reason(e);
        if (text.Length > MaxDiagnosis) text = string.Concat(text.AsSpan(0, MaxDiagnosis), "…");
        return ClientTls.CaToCheck(e.Status.DebugException)
            ? $"{text} (TLS: check that ClusterSet:Ca is the CA that signed the peer's certificate, and ClusterSet:Certificate/Key this silo's)"
            : text;
    }

    /// <summary>The peer's identity, networks and nodes, read now.</summary>
    public static async Task<PeerView> ReadAsync(ControlPlaneClient client, CancellationToken cancellationToken)
    {
        var call = Calls.Until(cancellationToken);
        var info = await client.GetClusterInfoAsync(call).ConfigureAwait(false);
        var observed = new ClusterPeerStatus();
        var page = string.Empty;
        do
        {
            var networks = await client.Networks.ListAsync(new ListRequest { PageSize = 1000, PageToken = page }, call).ConfigureAwait(false);
            observed.Networks.Add(networks.Networks.Select(PeerView.Remote));
            page = networks.NextPageToken;
        }
        while (page.Length > 0);
        do
        {
            var nodes = await client.Nodes.ListAsync(new ListRequest { PageSize = 1000, PageToken = page }, call).ConfigureAwait(false);
            observed.Nodes.Add(nodes.Nodes.Select(PeerView.Remote));
            page = nodes.NextPageToken;
        }
        while (page.Length > 0);
        return new PeerView(info, observed);
    }
}
