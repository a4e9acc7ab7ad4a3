using ControlPlane.Contracts.Hosting;
using ControlPlane.Contracts.Client;
using ControlPlane.Dns.Feed;
using ControlPlane.Dns.Handling;
using ControlPlane.Dns.Transport;
using ControlPlane.Dns.Wire;
using ControlPlane.Dns.Zones;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Dns;

/// <summary>
/// Adds the cluster DNS server to a host: the DNS server process uses it, and so does the silo
/// when "Dns:Enabled" is set (the single-node default). Everything is read from the "Dns" section.
/// </summary>
public static class DnsHosting
{
    /// <param name="serviceRanges">The control plane's service ranges when the host knows them (the
    /// silo does); they replace "Dns:ServiceRanges".</param>
    /// <param name="feedInterceptor">Through which the feed's calls go (the silo marks its own with it).</param>
    public static IServiceCollection AddClusterDns(this IServiceCollection services, IConfiguration section, IReadOnlyList<string>? serviceRanges = null,
        Grpc.Core.Interceptors.Interceptor? feedInterceptor = null)
    {
        // Several options types share the section (and the silo's Dns:Enabled): a key none of them
        // has (a typo such as Dns:Listn) is refused rather than ignored while its default applies.
        section.RequireKnownKeys([.. Settings.SettingNames<DnsTransportOptions>(), .. Settings.SettingNames<ClusterZoneOptions>(), .. Settings.SettingNames<DnsFeedOptions>(),
            .. Settings.SettingNames<Forwarding.ForwarderOptions>(), "RateLimit", "Forwarding", "TraceQueries", "Enabled"]);
        var transport = section.Read<DnsTransportOptions>();
        var zone = section.Read<ClusterZoneOptions>();
        if (serviceRanges is not null) zone.ServiceRanges = [.. serviceRanges];
        var feed = section.Read<DnsFeedOptions>();
        var forwarding = section.Read<Forwarding.ForwarderOptions>();
        var rateLimit = section.GetSection("RateLimit").Read<ResponseRateLimitOptions>(everyKey: true);
        var allowed = section.GetSection("Forwarding").Read<Forwarding.ForwardingGateOptions>(everyKey: true).AllowedClients is { Count: > 0 } list ? list : Forwarding.ForwardingClients.Default;
        var errors = Validate(transport, zone, feed);
        var tls = ClientTls.FromOptions(feed.Ca, feed.Certificate, feed.Key, ("Dns:Ca", "Dns:Certificate", "Dns:Key"), out var tlsProblem);
        if (tlsProblem is not null) errors.Add(tlsProblem);
        errors.AddRange(rateLimit.Validate());
        var forwardingClients = Forwarding.ForwardingClients.Parse(allowed, errors);
        errors.AddRange(forwarding.Forwarders.Where(f => !ControlPlane.Contracts.Hosting.ListenAddress.TryParse(f, out var e) || e.Port == 0)
            .Select(f => $"Dns:Forwarders: '{f}' is not address:port"));
        if (errors.Count > 0)
        {
            throw new InvalidConfigurationException("Invalid configuration:\n  " + string.Join("\n  ", errors));
        }
        // A taken address stops the program here, in one line, before anything has started.
        var listen = System.Net.IPEndPoint.Parse(transport.Listen);
        ControlPlane.Contracts.Hosting.ListenAddress.RequireFree("Dns:Listen", listen, udp: true);
        if (zone.NameserverAddress.Length == 0) zone.NameserverAddress = NameserverOf(listen.Address).ToString();
        var staticRecords = feed.ZoneFiles.SelectMany(path => ZoneFile.Parse(File.ReadAllText(path))).ToList();
        var heapBefore = GC.GetTotalMemory(forceFullCollection: true);
        // Until the first sync the networks (and so the reverse zones they claim) are unknown: every
        // reverse name is answered SERVFAIL rather than forwarded or refused.
        var handler = new QueryHandler(feed.ControlPlane.Length == 0
            ? ZoneSnapshot.Build(staticRecords)
            : ZoneSnapshot.Unsynced([.. zone.ForwardZones, "in-addr.arpa", "ip6.arpa", .. zone.ReverseZones]))
        {
            MaxUdpPayload = transport.MaxUdpPayload,
            TraceQueries = section.Value("TraceQueries", false),
            Forwarder = forwarding.Forwarders.Count > 0 ? new Forwarding.Forwarder(forwarding, TimeProvider.System) : null,
            ForwardingClients = forwardingClients,
            RateLimiter = rateLimit.ResponsesPerSecond > 0 ? new ResponseRateLimiter(rateLimit, TimeProvider.System) : null,
        };
        if (feed.ControlPlane.Length == 0)
        {
            var snapshot = handler.Snapshot;
            var bytes = GC.GetTotalMemory(forceFullCollection: true) - heapBefore;
            Console.WriteLine($"static zones: {snapshot.NameCount} names, {snapshot.RecordCount} records, index {bytes} bytes ({(double)bytes / Math.Max(1, snapshot.RecordCount):F0} bytes per record)");
        }
        services.AddSingleton(transport);
        services.AddSingleton(handler);
        services.AddSingleton<DnsListenerService>();
        services.AddHostedService(s => s.GetRequiredService<DnsListenerService>());
        if (feed.ControlPlane.Length > 0)
        {
            var client = feedInterceptor is null ? new ControlPlaneClient(feed.ControlPlane, tls: tls) : new ControlPlaneClient(feed.ControlPlane, tls, feedInterceptor);
            services.AddSingleton(s => new ClusterFeed(client, handler, zone, feed, staticRecords, s.GetRequiredService<ILogger<ClusterFeed>>(),
                s.GetService<Microsoft.Extensions.Hosting.IHostApplicationLifetime>(), s.GetService<WatchHealth>()));
            services.AddHostedService(s => s.GetRequiredService<ClusterFeed>());
        }
        return services;
    }

    /// <summary>
    /// The address ns.dns.&lt;zone&gt; (every zone's NS and SOA MNAME) resolves to unless
    /// Dns:NameserverAddress names one: the address this server listens on, or for a wildcard
    /// this host's first global address of that family (IPv4 first for a dual-stack "[::]").
    /// </summary>
    private static System.Net.IPAddress NameserverOf(System.Net.IPAddress listen)
    {
        if (!listen.Equals(System.Net.IPAddress.Any) && !listen.Equals(System.Net.IPAddress.IPv6Any)) return listen;
        var candidates = System.Net.NetworkInformation.NetworkInterface.GetAllNetworkInterfaces()
            .Where(i => i.OperationalStatus == System.Net.NetworkInformation.OperationalStatus.Up)
            .SelectMany(i => i.GetIPProperties().UnicastAddresses.Select(u => u.Address))
            .Where(a => !System.Net.IPAddress.IsLoopback(a) && !a.IsIPv6LinkLocal)
            .OrderBy(a => a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 0 : 1)
            .ToList();
        var family = listen.Equals(System.Net.IPAddress.Any) ? System.Net.Sockets.AddressFamily.InterNetwork : (System.Net.Sockets.AddressFamily?)null;
        return candidates.FirstOrDefault(a => family is null || a.AddressFamily == family)
            ?? (listen.Equals(System.Net.IPAddress.Any) ? System.Net.IPAddress.Loopback : System.Net.IPAddress.IPv6Loopback);
    }

    private static List<string> Validate(DnsTransportOptions transport, ClusterZoneOptions zone, DnsFeedOptions feed)
    {
        var errors = new List<string>();
        if (!ControlPlane.Contracts.Hosting.ListenAddress.TryParse(transport.Listen, out _)) errors.Add($"Dns:{nameof(transport.Listen)} '{transport.Listen}' is not address:port (an IPv6 address in brackets: [::]:53)");
        if (zone.NameserverAddress.Length > 0 && !System.Net.IPAddress.TryParse(zone.NameserverAddress, out _)) errors.Add($"Dns:{nameof(zone.NameserverAddress)} '{zone.NameserverAddress}' is not an IP address");
        if (transport.MaxUdpPayload is < 512 or > 65535) errors.Add($"Dns:{nameof(transport.MaxUdpPayload)} must lie in 512..65535");
        if (transport.MaxTcpConnections < 1) errors.Add($"Dns:{nameof(transport.MaxTcpConnections)} must be positive");
        if (transport.MaxTcpQueriesInFlight < 1) errors.Add($"Dns:{nameof(transport.MaxTcpQueriesInFlight)} must be positive");
        // RFC 2181 section 8: a TTL is at most 2^31 - 1; resolvers read one with the top bit set as 0 (no caching at all).
        foreach (var (setting, ttl) in new[] { (nameof(zone.Ttl), zone.Ttl), (nameof(zone.NegativeTtl), zone.NegativeTtl) }.Where(t => t.Item2 > int.MaxValue))
        {
            errors.Add($"Dns:{setting}={ttl}: a TTL is at most 2147483647 seconds (RFC 2181, section 8)");
        }
        if (string.IsNullOrWhiteSpace(zone.Zone)) errors.Add("Dns:Zone must not be empty");
        else if (zone.ClusterSetZone.Length > 0 && Nested(DnsName.Canonical(zone.Zone), DnsName.Canonical(zone.ClusterSetZone)))
        {
            errors.Add($"Dns:{nameof(zone.ClusterSetZone)} '{zone.ClusterSetZone}' and Dns:Zone '{zone.Zone}' must be apart (neither the other nor under it)");
        }
        foreach (var (setting, name) in new[] { (Setting: "Zone", Name: zone.Zone), (Setting: nameof(zone.ClusterSetZone), Name: zone.ClusterSetZone) }.Where(z => z.Name.Trim().Length > 0))
        {
            // A cluster domain is a DNS subdomain (lower case; one trailing dot allowed), as Kubernetes' clusterDomain.
            if (!ControlPlane.Contracts.DnsNames.IsSubdomain(name.Trim().TrimEnd('.').ToLowerInvariant()) || name.Trim().EndsWith("..", StringComparison.Ordinal))
                errors.Add($"Dns:{setting} '{name}' is not a domain name (labels of letters, digits and '-', separated by single dots)");
        }
        foreach (var range in zone.EffectiveServiceRanges.Where(r => !ReverseZones.TryParseRange(r, out _)))
        {
            errors.Add($"Dns:{nameof(zone.ServiceRanges)}: '{range}' is not a range such as 10.96.0.0/16 (address/prefix, no address bits set past the prefix)");
        }
        static bool Nested(string a, string b) => a == b || a.EndsWith("." + b, StringComparison.Ordinal) || b.EndsWith("." + a, StringComparison.Ordinal);
        static bool IsReverse(string name) => name is "in-addr.arpa" or "ip6.arpa"
            || name.EndsWith(".in-addr.arpa", StringComparison.Ordinal) || name.EndsWith(".ip6.arpa", StringComparison.Ordinal);
        foreach (var reverse in zone.ReverseZones.Select(DnsName.Canonical).Where(r => !IsReverse(r)))
        {
            errors.Add($"Dns:{nameof(zone.ReverseZones)}: '{reverse}' is not under in-addr.arpa or ip6.arpa");
        }
        if (feed.ControlPlane.Length > 0 && ControlPlane.Contracts.Client.ControlPlaneChannel.Problem(feed.ControlPlane) is { } problem)
            errors.Add($"Dns:{nameof(feed.ControlPlane)}: {problem}");
        foreach (var file in feed.ZoneFiles.Where(f => !File.Exists(f))) errors.Add($"Dns:ZoneFiles: '{file}' does not exist");
        if (feed.ProgrammedBound <= TimeSpan.Zero) errors.Add($"Dns:{nameof(feed.ProgrammedBound)} must be positive");
        return errors;
    }
}

/// <summary>
/// Runs the UDP/TCP listener for the lifetime of the host (a taken address was already refused
/// by <see cref="DnsHosting.AddClusterDns"/>, before anything started).
/// </summary>
public sealed class DnsListenerService(QueryHandler handler, DnsTransportOptions options, ILogger<DnsListenerService> logger) : IHostedService, IAsyncDisposable
{
    private DnsListener? _listener;

    public System.Net.IPEndPoint? LocalEndPoint => _listener?.LocalEndPoint;

    public QueryHandler Handler => handler;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _listener = new DnsListener(handler, options, logger);
        _listener.Start();
        logger.LogInformation("DNS listening on {Endpoint} (UDP and TCP)", _listener.LocalEndPoint);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_listener is not null)
        {
            await _listener.DisposeAsync().ConfigureAwait(false);
            _listener = null;
        }
        logger.LogInformation("DNS stopped: {Metrics}", handler.Metrics.Summary());
    }

    public async ValueTask DisposeAsync()
    {
        if (_listener is not null) await _listener.DisposeAsync().ConfigureAwait(false);
    }
}
