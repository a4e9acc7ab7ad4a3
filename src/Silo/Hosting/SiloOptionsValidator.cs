using System.Net;
using ControlPlane.Contracts.Naming;
using ControlPlane.Grains;
using ControlPlane.Contracts.Addressing;
using ControlPlane.Grains.Ipam;
using ControlPlane.Storage.Errors;
using ControlPlane.Storage.GrainStorage;

namespace ControlPlane.Silo.Hosting;

/// <summary>Checks every setting of the silo at once and reports all that are wrong.</summary>
public static class SiloOptionsValidator
{
    public static void Validate(SiloOptions silo, ClusterOptions cluster, StoreOptions store, ControlPlaneOptions controlPlane, Grains.ClusterSet.ClusterSetOptions clusterSet)
    {
        var errors = new List<string>();
        if (!IPAddress.TryParse(silo.ListenAddress, out _)) errors.Add($"Silo:{nameof(silo.ListenAddress)} '{silo.ListenAddress}' is not an IP address");
        if (silo.Port is < 0 or > 65535) errors.Add($"Silo:{nameof(silo.Port)} {silo.Port} is outside 0..65535");
        if (silo.HealthPort is < 0 or > 65535) errors.Add($"Silo:{nameof(silo.HealthPort)} {silo.HealthPort} is outside 0..65535");
        if (silo.MaxReceiveMessageSize < 1024) errors.Add($"Silo:{nameof(silo.MaxReceiveMessageSize)} must be at least 1024");
        if (silo.DefaultBookmarkInterval < TimeSpan.FromSeconds(1)) errors.Add($"Silo:{nameof(silo.DefaultBookmarkInterval)} {silo.DefaultBookmarkInterval} must be at least 1 second");
        if (silo.WatchBuffer is < 16 or > 1_048_576) errors.Add($"Silo:{nameof(silo.WatchBuffer)} {silo.WatchBuffer} is outside 16..1048576");
        if (cluster.Membership is not ("localhost" or "redis")) errors.Add($"Cluster:{nameof(cluster.Membership)} '{cluster.Membership}' must be localhost or redis");
        if (cluster.Membership == "redis" && cluster.Redis.Length == 0) errors.Add($"Cluster:{nameof(cluster.Redis)} is required with redis membership");
        if (cluster.SiloPort is < 0 or > 65535) errors.Add($"Cluster:{nameof(cluster.SiloPort)} {cluster.SiloPort} is outside 0..65535");
        if (cluster.AdvertisedAddress.Length > 0 && !IPAddress.TryParse(cluster.AdvertisedAddress, out _)) errors.Add($"Cluster:{nameof(cluster.AdvertisedAddress)} '{cluster.AdvertisedAddress}' is not an IP address");
        if (cluster.ProbeTimeout < TimeSpan.FromMilliseconds(500)) errors.Add($"Cluster:{nameof(cluster.ProbeTimeout)} must be at least 0.5 seconds");
        if (cluster.GrainCallTimeout < TimeSpan.FromSeconds(1)) errors.Add($"Cluster:{nameof(cluster.GrainCallTimeout)} must be at least 1 second");
        if (cluster.MissedProbes is < 1 or > 10) errors.Add($"Cluster:{nameof(cluster.MissedProbes)} {cluster.MissedProbes} is outside 1..10");
        if (cluster.IdleTimeout < TimeSpan.FromSeconds(2)) errors.Add($"Cluster:{nameof(cluster.IdleTimeout)} must be at least 2 seconds");
        if (store.Provider is not ("sqlite" or "postgres")) errors.Add($"Store:{nameof(store.Provider)} '{store.Provider}' must be sqlite or postgres");
        if (store.Provider == "postgres" && store.Postgres.Length == 0) errors.Add($"Store:{nameof(store.Postgres)} (a connection string) is required with postgres");
        if (store.Provider == "postgres" && store.Postgres.Length > 0 && ConnectionStringProblem(store.Postgres) is { } problem) errors.Add($"Store:{nameof(store.Postgres)} is not a connection string Npgsql takes: {problem}");
        if (store.Provider == "sqlite" && cluster.Membership != "localhost") errors.Add($"Store:{nameof(store.Provider)} sqlite serves one silo: several silos ({nameof(cluster.Membership)} {cluster.Membership}) need postgres");
        if (store.Partitions is < 1 or > 1024) errors.Add($"Store:{nameof(store.Partitions)} {store.Partitions} is outside 1..1024");
        if (store.ChangeLogRetention < 1) errors.Add($"Store:{nameof(store.ChangeLogRetention)} must be positive");
        if (controlPlane.UnderlayMtu is < 1280 or > 9216) errors.Add($"ControlPlane:{nameof(controlPlane.UnderlayMtu)} {controlPlane.UnderlayMtu} is outside 1280..9216");
        if (controlPlane.NodeLeaseDuration <= TimeSpan.Zero) errors.Add($"ControlPlane:{nameof(controlPlane.NodeLeaseDuration)} must be positive");
        foreach (var (name, cidr) in new[] { (nameof(controlPlane.ServiceIpv4Cidr), controlPlane.ServiceIpv4Cidr), (nameof(controlPlane.ServiceIpv6Cidr), controlPlane.ServiceIpv6Cidr) })
        {
            if (cidr.Length == 0) continue;
            try
            {
                var prefix = AddressInput.ParsePrefix(name, cidr);
                if (prefix.Bits - prefix.Length > 20) errors.Add($"ControlPlane:{name}='{cidr}': a service range holds at most 2^20 addresses ({(prefix.Family == System.Net.Sockets.AddressFamily.InterNetwork ? "/12" : "/108")} or longer)");
            }
            catch (ControlPlaneException e)
            {
                errors.Add($"ControlPlane:{e.Message}");
            }
        }
        if (NameRules.Label(clusterSet.ClusterId) is { } idError) errors.Add($"ClusterSet:{nameof(clusterSet.ClusterId)} {idError}");
        if (NameRules.Subdomain(clusterSet.Name) is { } setError) errors.Add($"ClusterSet:{nameof(clusterSet.Name)} {setError}");
        if (clusterSet.PeerGracePeriod < TimeSpan.Zero) errors.Add($"ClusterSet:{nameof(clusterSet.PeerGracePeriod)} must not be negative");
        if (clusterSet.PeerProbeTimeout <= TimeSpan.Zero) errors.Add($"ClusterSet:{nameof(clusterSet.PeerProbeTimeout)} must be positive");
        if (clusterSet.PeerBookmarkSeconds is < 1 or > 60) errors.Add($"ClusterSet:{nameof(clusterSet.PeerBookmarkSeconds)} {clusterSet.PeerBookmarkSeconds} is outside 1..60");
        if (clusterSet.Ca.Length > 0 && (clusterSet.Certificate.Length == 0 || clusterSet.Key.Length == 0)) errors.Add($"ClusterSet:{nameof(clusterSet.Ca)} needs ClusterSet:Certificate and ClusterSet:Key (this cluster's client certificate for its peers)");
        if (errors.Count > 0)
        {
            throw new ControlPlane.Contracts.Hosting.InvalidConfigurationException("Invalid configuration:\n  " + string.Join("\n  ", errors));
        }
    }

    /// <summary>Why Npgsql refuses <paramref name="connectionString"/> (a misspelt keyword, a value of the wrong kind), or null.</summary>
    private static string? ConnectionStringProblem(string connectionString)
    {
        try
        {
            _ = new Npgsql.NpgsqlConnectionStringBuilder(connectionString);
            return null;
        }
        catch (Exception e) when (e is ArgumentException or FormatException or InvalidCastException)
        {
            return e.Message;
        }
    }
}
