namespace ControlPlane.Grains.ClusterSet;

/// <summary>This cluster's place in a ClusterSet (configuration section "ClusterSet").</summary>
public sealed class ClusterSetOptions
{
    /// <summary>
    /// This cluster's id, unique in its set (the Multi-Cluster Services API's
    /// <c>cluster.clusterset.k8s.io</c>): a DNS label, used in headless names of clusterset.local.
    /// </summary>
    public string ClusterId { get; set; } = "default";

    /// <summary>The ClusterSet this cluster belongs to; a peer of another set is not joined.</summary>
    public string Name { get; set; } = "clusterset";

    /// <summary>How long a lost peer's imports are kept before they are withdrawn.</summary>
    public TimeSpan PeerGracePeriod { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long creating a ClusterPeer waits for the peer to answer before storing it unjoined.</summary>
    public TimeSpan PeerProbeTimeout { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>Seconds between the progress bookmarks a peer sends on an idle watch (how soon a silent loss is noticed).</summary>
    public uint PeerBookmarkSeconds { get; set; } = 2;

    /// <summary>For https:// peer addresses: the CA that issued the peers' silo certificates, and this cluster's client certificate and key (a reader's is enough).</summary>
    public string Ca { get; set; } = string.Empty;

    public string Certificate { get; set; } = string.Empty;

    public string Key { get; set; } = string.Empty;
}
