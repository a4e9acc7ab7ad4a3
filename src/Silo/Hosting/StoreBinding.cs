using System.Globalization;
using ControlPlane.Storage.Errors;
using ControlPlane.Storage.GrainStorage;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace ControlPlane.Silo.Hosting;

/// <summary>
/// Ties a Redis cluster (its service and cluster id) to the one store its silos share. Orleans
/// places each grain on one silo of the cluster, and that silo writes the object to its own store:
/// a silo pointed at another database, but given the same membership, would take some of the
/// objects into that database, answer for them from it, and fail writes whose references live in
/// the other one. So the membership Redis records which store the cluster runs on, under a lease
/// its running silos keep renewing: a silo whose store is another one stops at start, naming both
/// (exit code 1), before it joins. A cluster that has been stopped for longer than the lease may
/// start again on another database.
/// <para>
/// The settings every silo of a cluster must share (<see cref="SharedSettings"/>: the service
/// ranges, the underlay MTU, the node lease, the ClusterSet identity) are bound the same way,
/// under a key of their own: a silo given other values would hand out service addresses from
/// another range, or announce another cluster to the ClusterSet, for the grains placed on it. It
/// stops at start (exit code 2) naming each setting that differs; to change them, stop every silo
/// for the lease.
/// </para>
/// </summary>
internal sealed class StoreBinding(ClusterOptions cluster, StoreOptions store, DurableStore durable, ControlPlane.Grains.ControlPlaneOptions controlPlane,
    ControlPlane.Grains.ClusterSet.ClusterSetOptions clusterSet, ILogger<StoreBinding> log) : BackgroundService
{
    /// <summary>How long the binding outlives the last silo that renewed it.</summary>
    public static readonly TimeSpan Lease = TimeSpan.FromSeconds(30);

    private static readonly TimeSpan Renewal = TimeSpan.FromSeconds(5);

    // Sets the binding to this store when there is none or it is this store's already (renewing the
    // lease), and answers the binding as it is now: this store's, or another's.
    private const string Script = """
        local bound = redis.call('GET', KEYS[1])
        if bound == false or string.sub(bound, 1, string.len(ARGV[1]) + 1) == ARGV[1] .. ' ' then
            redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
            return ARGV[2]
        end
        return bound
        """;

    private ConnectionMultiplexer? _redis;
    private string? _value, _settings;

    /// <summary>The Redis key of a cluster's binding (beside Orleans' "{service}/members/{cluster}").</summary>
    public static string Key(ClusterOptions cluster) => $"{cluster.ServiceId}/store/{cluster.ClusterId}";

    /// <summary>The Redis key of the settings a cluster's silos share.</summary>
    public static string SettingsKey(ClusterOptions cluster) => $"{cluster.ServiceId}/settings/{cluster.ClusterId}";

    /// <summary>
    /// The settings every silo of a cluster must give alike, as "Section:Key=value" joined by ';'
    /// (no value holds a space, a ';' or an '=': each is validated before this).
    /// </summary>
    public static string SharedSettings(ControlPlane.Grains.ControlPlaneOptions controlPlane, ControlPlane.Grains.ClusterSet.ClusterSetOptions clusterSet) => string.Join(";",
        $"ControlPlane:ServiceIpv4Cidr={controlPlane.ServiceIpv4Cidr}", $"ControlPlane:ServiceIpv6Cidr={controlPlane.ServiceIpv6Cidr}",
        string.Create(CultureInfo.InvariantCulture, $"ControlPlane:UnderlayMtu={controlPlane.UnderlayMtu}"),
        string.Create(CultureInfo.InvariantCulture, $"ControlPlane:NodeLeaseDuration={controlPlane.NodeLeaseDuration:c}"),
        $"ClusterSet:ClusterId={clusterSet.ClusterId}", $"ClusterSet:Name={clusterSet.Name}");

    private string Settings => _settings ??= SharedSettings(controlPlane, clusterSet);

    // The settings as their binding records them: a binding's value is its identity and a space
    // (for the store, the identity is followed by where the store is; the settings say it all).
    private string SettingsValue => Settings + " ";

    private string StoreId => durable.Partitions.StoreId.ToString("x16", CultureInfo.InvariantCulture);

    /// <summary>This store as the binding records it: its identity, then where it is (for the message of a silo refused).</summary>
    private string Value => _value ??= $"{StoreId} {Describe(store)}";

    /// <summary>Binds the cluster to this silo's store, or refuses (FAILED_PRECONDITION) when it runs on another one.</summary>
    public void Take()
    {
        var configuration = ConfigurationOptions.Parse(cluster.Redis);
        configuration.AbortOnConnectFail = false;
        _redis = ConnectionMultiplexer.Connect(configuration);
        var bound = Renew();
        if (bound == Value && RenewSettings() is var shared && shared != SettingsValue)
        {
            var theirs = Parse(shared.TrimEnd());
            var differing = Parse(Settings).Where(s => theirs.GetValueOrDefault(s.Key) != s.Value)
                .Select(s => $"{s.Key} is '{theirs.GetValueOrDefault(s.Key) ?? "(unset)"}' on the cluster's running silos, '{s.Value}' here");
            throw new ControlPlane.Contracts.Hosting.InvalidConfigurationException(
                $"Invalid configuration:\n  cluster '{cluster.ClusterId}' (Cluster:ClusterId) runs with other settings than this silo's: {string.Join("; ", differing)}. " +
                $"Every silo of a cluster must give them alike; to change them, stop every silo of the cluster for {Lease.TotalSeconds:F0} s");
        }
        if (bound != Value)
        {
            throw new ControlPlaneException(ErrorCode.FailedPrecondition,
                $"cluster '{cluster.ClusterId}' (Cluster:ClusterId, with the membership in Cluster:Redis) runs on another store: {Where(bound)}; " +
                $"this silo's Store:Postgres is {Describe(store)} (store {StoreId}). Every silo of a cluster must use one database: " +
                $"point Store:Postgres at the cluster's database, or give this silo its own Cluster:ClusterId " +
                $"(a cluster stopped for {Lease.TotalSeconds:F0} s may start again on another database)");
        }
    }

    private string Renew() => (string)_redis!.GetDatabase().ScriptEvaluate(Script, [Key(cluster)], [StoreId, Value, (long)Lease.TotalMilliseconds])!;

    // The same lease, keyed by the settings themselves.
    private string RenewSettings() => (string)_redis!.GetDatabase().ScriptEvaluate(Script, [SettingsKey(cluster)], [Settings, SettingsValue, (long)Lease.TotalMilliseconds])!;

    private static Dictionary<string, string> Parse(string settings) => settings.Split(';')
        .Select(s => s.Split('=', 2)).Where(p => p.Length == 2).ToDictionary(p => p[0], p => p[1], StringComparer.Ordinal);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (_redis is null) return;
        using var timer = new PeriodicTimer(Renewal);
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
        {
            string bound, shared;
            try
            {
                bound = Renew();
                shared = RenewSettings();
            }
            catch (RedisException e)
            {
                // Membership has the same Redis: Orleans and the membership guard deal with its loss.
                log.LogWarning("Cannot renew this cluster's store binding in Redis yet: {Reason}", e.Message);
                continue;
            }
            if (bound != Value)
            {
                // The lease ran out while Redis was out of reach, and silos of another store took the cluster.
                ProcessEnd.Now(log, $"cluster '{cluster.ClusterId}' now runs on another store ({Where(bound)}), not this silo's: stopping (exit code 1)", 1);
            }
            if (shared != SettingsValue)
            {
                ProcessEnd.Now(log, $"cluster '{cluster.ClusterId}' now runs with other settings ({shared.TrimEnd()}), not this silo's ({Settings}): stopping (exit code 2)", 2);
            }
        }
    }

    public override void Dispose()
    {
        base.Dispose();
        _redis?.Dispose();
    }

    private static string Where(string bound) => bound.IndexOf(' ', StringComparison.Ordinal) is var space and > 0
        ? $"{bound[(space + 1)..]} (store {bound[..space]})"
        : $"store {bound}";

    /// <summary>Where a store is, without credentials: PostgreSQL's host, port and database.</summary>
    private static string Describe(StoreOptions store)
    {
        var settings = new Npgsql.NpgsqlConnectionStringBuilder(store.Postgres);
        return $"database '{settings.Database}' at {settings.Host}:{settings.Port}";
    }
}
