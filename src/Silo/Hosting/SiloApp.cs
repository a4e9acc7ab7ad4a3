using System.Net;
using System.Net.Sockets;
using ControlPlane.Contracts.Hosting;
using ControlPlane.Dns;
using ControlPlane.Grains;
using ControlPlane.Grains.ClusterSet;
using ControlPlane.Grains.Controllers;
using ControlPlane.Silo.ClusterSet;
using ControlPlane.Grains.Serialization;
using ControlPlane.Grains.State;
using ControlPlane.Silo.Api;
using ControlPlane.Silo.Security;
using ControlPlane.Storage;
using ControlPlane.Storage.GrainStorage;
using ControlPlane.Storage.Postgres;
using ControlPlane.Storage.Sqlite;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using OpenTelemetry.Metrics;
using Orleans.Configuration;
using Orleans.Serialization;
using Orleans.Runtime.Hosting;
using Orleans.Runtime.Placement;

namespace ControlPlane.Silo.Hosting;

/// <summary>
/// Composes a silo: configuration, the data directory lock, the embedded store, Orleans with
/// every grain and the storage provider, the controllers, and the gRPC API on Grpc.AspNetCore
/// (with reflection and health). Used by Program and by tests that host a silo in-process.
/// </summary>
public static class SiloApp
{
    public static WebApplication Build(string[] args, Action<IConfigurationBuilder>? configure = null)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
        ProgramDefaults.Apply(builder);
        configure?.Invoke(builder.Configuration);
        var silo = builder.Configuration.GetSection("Silo").Read<SiloOptions>(everyKey: true);
        var cluster = builder.Configuration.GetSection("Cluster").Read<ClusterOptions>(everyKey: true);
        var storeOptions = builder.Configuration.GetSection("Store").Read<StoreOptions>(everyKey: true);
        var controlPlane = builder.Configuration.GetSection("ControlPlane").Read<ControlPlaneOptions>(everyKey: true);
        var clusterSet = builder.Configuration.GetSection("ClusterSet").Read<ClusterSetOptions>(everyKey: true);
        SiloOptionsValidator.Validate(silo, cluster, storeOptions, controlPlane, clusterSet);
        var tls = SiloTls.From(builder.Configuration);
        // Every setting is read before the directory is locked, so that a bad one is what a silo
        // started beside a running one reports (exit 2), not the lock.
        // The silo serves /metrics on its own ports: Metrics:Listen is the agent's and DNS server's.
        builder.Configuration.GetSection("Metrics").RequireKnownKeys(["OrleansPerCall"]);
        var orleansPerCall = builder.Configuration.Value("Metrics:OrleansPerCall", false);
        Security.SecurityHosting.AddAuditAndLimits(builder.Services, builder.Configuration, silo);
        AddEmbeddedDns(builder, silo, controlPlane, tls is not null);

        // Before anything is opened or bound: a second silo on this directory stops here.
        var directoryLock = storeOptions.Provider == "sqlite" ? DataDirectoryLock.Acquire(silo.DataDirectory) : null;
        if (directoryLock is not null)
        {
            builder.Services.AddSingleton(_ => directoryLock);
        }

        // A taken port stops the silo here, in one line, before Orleans has started.
        ListenAddress.RequireFree("Silo:Port", new IPEndPoint(IPAddress.Parse(silo.ListenAddress), silo.Port));
        ListenAddress.RequireFree("Silo:HealthPort", new IPEndPoint(IPAddress.Parse(silo.ListenAddress), silo.HealthPort));
        if (silo.UnixSocket.Length > 0) ListenAddress.ClaimUnixSocket("Silo:UnixSocket", silo.UnixSocket);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.Http2.MaxStreamsPerConnection = 1000;
            RequestMetadataLimit.Configure(kestrel.Limits);
            // gRPC needs HTTP/2; without TLS that means prior knowledge (h2c), so the API port speaks HTTP/2 only.
            kestrel.Listen(IPAddress.Parse(silo.ListenAddress), silo.Port, o => { if (tls is null) o.Protocols = HttpProtocols.Http2; else tls.Listen(o); });
            if (silo.UnixSocket.Length > 0)
            {
                kestrel.ListenUnixSocket(silo.UnixSocket, o => o.Protocols = HttpProtocols.Http2);
            }
            if (silo.HealthPort > 0)
            {
                kestrel.Listen(IPAddress.Parse(silo.ListenAddress), silo.HealthPort, o => o.Protocols = HttpProtocols.Http1);
            }
        });
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = ProcessEnd.ShutdownTimeout);
        builder.Services.AddSingleton(silo);
        builder.Services.AddSingleton(controlPlane);
        builder.Services.AddSingleton(clusterSet);
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton<ObjectServices>();

        builder.UseOrleans(o =>
        {
            ConfigureOrleans(o, cluster);
            o.AddControlPlaneStorage(_ => storeOptions.Provider == "postgres"
                ? new PostgresGrainStore(storeOptions.Postgres, sole: cluster.Membership == "localhost", cluster: $"{cluster.ServiceId}/{cluster.ClusterId}")
                : new SqliteGrainStore(Path.Combine(silo.DataDirectory, "controlplane.db"), silo.SynchronousFull), storeOptions);
        });

        // After Orleans' own registration, so that this one is the one resolved.
        builder.Services.AddKeyedSingleton<TimeProvider>(TimeProviderNames.Membership, ProcessClock.Instance);

        // Registered after Orleans, so they start once the silo runs.
        builder.Services.AddSingleton<FeedController, ServiceEndpointsController>();
        builder.Services.AddSingleton<FeedController, NodeLifecycleController>();
        builder.Services.AddSingleton<PeerClients>();
        builder.Services.AddSingleton<IPeerProbe>(services => services.GetRequiredService<PeerClients>());
        builder.Services.AddSingleton<PeerLinks>();
        builder.Services.AddSingleton<FeedController, ClusterSetController>();
        builder.Services.AddSingleton<ControllerHost>();
        builder.Services.AddSingleton<ControlPlane.Grains.Convergence.CommitClock>();
        builder.Services.AddSingleton<ControlPlane.Silo.Convergence.ProgrammedPositions>();
        builder.Services.AddHostedService(services => services.GetRequiredService<ControllerHost>());

        builder.Services.AddSingleton(cluster);
        if (cluster.Membership == "redis")
        {
            builder.Services.AddSingleton<StoreBinding>();
            builder.Services.AddHostedService(services => services.GetRequiredService<StoreBinding>());
        }
        builder.Services.AddSingleton<MembershipGuard>();
        builder.Services.AddSingleton<IFatalErrorHandler, DeclaredDeadExit>();
        builder.Services.AddHostedService(services => services.GetRequiredService<MembershipGuard>());
        builder.Services.AddGrpc(o =>
        {
            o.Interceptors.Add<Telemetry.ApiTracingInterceptor>(); // the API span around everything but the audit and the limits
            o.Interceptors.Add<ErrorInterceptor>();
            o.Interceptors.Add<AuthorizationInterceptor>();
            if (cluster.Membership != "localhost")
            {
                o.Interceptors.Add<MembershipInterceptor>();
            }
            o.MaxReceiveMessageSize = silo.MaxReceiveMessageSize;
            o.CompressionProviders = [new GzipCompression()];
        });
        // Every service is bound by our provider, which maps unparsable requests to INVALID_ARGUMENT.
        builder.Services.RemoveAll(typeof(Grpc.AspNetCore.Server.Model.IServiceMethodProvider<>));
        builder.Services.AddSingleton(typeof(Grpc.AspNetCore.Server.Model.IServiceMethodProvider<>), typeof(ValidatingMethodProvider<>));
        ReflectionServices.AddTo(builder.Services);
        // Telemetry (docs/ARCHITECTURE.md, "Observability"): Prometheus text on /metrics (scrape it over
        // HTTP/1.1 on Silo:HealthPort), OTLP metrics and traces when OTEL_EXPORTER_OTLP_* is set.
        builder.Services.AddControlPlaneTelemetry(Contracts.Hosting.Telemetry.SiloService,
            metrics: m =>
            {
                m.AddMeter("Microsoft.Orleans").AddPrometheusExporter();
                if (!orleansPerCall) m.AddView(Telemetry.SiloTelemetry.WithoutOrleansPerCall);
            },
            tracing: t => t.AddSource("Microsoft.Orleans.Application"));
        builder.Services.AddSingleton<SiloHealthCheck>();
        builder.Services.AddGrpcHealthChecks(o =>
        {
            // Every API service answers for itself with the server's status ("" too), so a probe
            // may name the service it depends on; other names are NOT_FOUND, as the protocol says.
            foreach (var service in Contracts.V1.ApiReflection.Descriptor.Services) o.Services.Map(service.FullName, _ => true);
        }).AddCheck<SiloHealthCheck>("silo");
        SiloTls.AddTo(builder.Services, tls);

        var app = builder.Build();
        // The container owns the lock from here on (it is released when the app is disposed);
        // the store opens now, under the lock, so a broken store fails the start rather than the first call.
        if (directoryLock is not null)
        {
            app.Services.GetRequiredService<DataDirectoryLock>();
        }
        // The audit log opens before the store: a path it cannot use stops the start before anything is opened.
        app.Services.GetService<Security.AuditLog>();
        app.Services.GetRequiredService<DurableStore>();
        // Before Orleans joins: a silo whose store is not its cluster's stops here.
        app.Services.GetService<StoreBinding>()?.Take();
        // Arrival times are taken from the first change on.
        app.Services.GetRequiredService<ControlPlane.Grains.Convergence.CommitClock>();
        Telemetry.ApiCallMetrics.Use(app);
        ClassifiedStatuses.Use(app);
        RequestMetadataLimit.Use(app);
        SiloTls.Use(app);
        GrpcRequestChecks.Use(app, silo.MaxReceiveMessageSize);
        app.MapGrpcService<NamespacesService>();
        app.MapGrpcService<NetworksService>();
        app.MapGrpcService<NodesService>();
        app.MapGrpcService<EndpointsService>();
        app.MapGrpcService<ServicesService>();
        app.MapGrpcService<NetworkPoliciesService>();
        app.MapGrpcService<ServiceEndpointSetsService>();
        app.MapGrpcService<ClusterPeersService>();
        app.MapGrpcService<ServiceExportsService>();
        app.MapGrpcService<ServiceImportsService>();
        app.MapGrpcService<ClusterSetService>();
        app.MapGrpcService<WatchService>();
        app.MapGrpcService<ConvergenceService>();
        app.MapGrpcReflectionService();
        app.MapGrpcHealthChecksService();
        app.MapPrometheusScrapingEndpoint();
        var health = app.Services.GetRequiredService<SiloHealthCheck>();
        app.MapMethods("/healthz", [HttpMethods.Get, HttpMethods.Head], (HttpContext context) => health.Check() is { } reason
            ? Results.Text($"not serving: {reason}\n", statusCode: StatusCodes.Status503ServiceUnavailable)
            : Results.Text("ok\n"));
        // The store is disposed with the service provider, after Orleans and the server have
        // stopped: queued writes are committed, then every watch's change stream is closed.
        return app;
    }

    /// <summary>
    /// Connects to the membership Redis once before Orleans starts, so that an address where none
    /// answers stops the silo with one line naming the setting (as an unreachable store does)
    /// rather than Orleans' failed start.
    /// </summary>
    private static void RequireReachable(string redis)
    {
        var configuration = StackExchange.Redis.ConfigurationOptions.Parse(redis);
        configuration.AbortOnConnectFail = true;
        configuration.ConnectRetry = 1;
        try
        {
            using var connection = StackExchange.Redis.ConnectionMultiplexer.Connect(configuration);
        }
        catch (StackExchange.Redis.RedisConnectionException e)
        {
            // The setting as Redis reads it, without its password.
            throw new InvalidOperationException(
                $"the membership Redis cannot be reached (Cluster:Redis {StackExchange.Redis.ConfigurationOptions.Parse(redis).ToString(includePassword: false)}): {e.FailureType}; start it, or correct the setting", e);
        }
    }

    private static void ConfigureOrleans(ISiloBuilder silo, ClusterOptions options)
    {
        var advertised = options.Membership != "redis" ? IPAddress.Loopback
            : options.AdvertisedAddress.Length > 0 ? IPAddress.Parse(options.AdvertisedAddress) : FirstAddress();
        var port = options.SiloPort;
        if (port == 0)
        {
            // Held for as long as the silo runs (the service collection keeps it).
            var reserved = ReservedPort.Take(advertised.AddressFamily);
            silo.Services.AddSingleton(reserved);
            port = reserved.Port;
        }
        if (options.Membership == "redis")
        {
            RequireReachable(options.Redis);
            silo.UseRedisClustering(redis => redis.ConfigurationOptions = StackExchange.Redis.ConfigurationOptions.Parse(options.Redis));
            // After a pause, grain calls wait for the membership check too (its doc comment says why).
            silo.AddIncomingGrainCallFilter<MembershipGrainCallFilter>();
            silo.Configure<Orleans.Configuration.ClusterOptions>(o => (o.ClusterId, o.ServiceId) = (options.ClusterId, options.ServiceId));
            silo.ConfigureEndpoints(advertised, port, gatewayPort: 0);
            // Failure detection fast enough to move a dead silo's grains within seconds
            // (docs/ARCHITECTURE.md, "Several silos"); the defaults take 10-15 s.
            silo.Configure<ClusterMembershipOptions>(o =>
            {
                o.ProbeTimeout = options.ProbeTimeout;
                o.NumMissedProbesLimit = options.MissedProbes;
                o.NumVotesForDeathDeclaration = 2;
                o.TableRefreshTimeout = TimeSpan.FromSeconds(10);
            });
        }
        else
        {
            silo.UseLocalhostClustering(siloPort: port, gatewayPort: 0, serviceId: options.ServiceId, clusterId: options.ClusterId);
        }
        silo.Configure<SiloMessagingOptions>(o =>
        {
            o.ResponseTimeout = options.GrainCallTimeout;
            o.DropExpiredMessages = true;
        });
        silo.Configure<GrainCollectionOptions>(o =>
        {
            o.CollectionAge = options.IdleTimeout;
            o.CollectionQuantum = TimeSpan.FromTicks(Math.Min(TimeSpan.FromMinutes(1).Ticks, options.IdleTimeout.Ticks / 2));
        });
        // Where recently called grains live (a hint: a stale or missing entry costs one directory
        // lookup). Bounded to the hot working set, not every object ever called: entries outlive
        // the activations they point to, and at 100,000 (the default holds a million) they were
        // a quarter of an idle silo's heap with 100,000 endpoints (bench/engine.md).
        silo.Configure<GrainDirectoryOptions>(o => o.CacheSize = 10_000);
        silo.Services.AddSerializer(serializer => serializer.AddProtobufMessages());
        // Orleans' activity propagation is a grain call filter on every call, in and out: added
        // only when traces are exported (without a tracer nothing would read what it carries).
        if (ControlPlane.Contracts.Hosting.Telemetry.TracesExported)
        {
            silo.AddActivityPropagation();
        }
        // Placement is chosen, not inherited: new objects spread over the silos at random
        // (allocators ask for local placement themselves).
        silo.Services.AddSingleton<Orleans.Runtime.PlacementStrategy, RandomPlacement>();
    }

    /// <summary>
    /// The single-node default: the cluster DNS server runs inside the silo ("Dns:Enabled") and
    /// follows the silo's own Watch stream over its unix socket or loopback port. Its reverse zones
    /// cover the silo's own service ranges. With TLS on, the loopback port needs the DNS server's own
    /// certificate (Dns:Ca, Dns:Certificate, Dns:Key); the unix socket does not.
    /// </summary>
    private static void AddEmbeddedDns(WebApplicationBuilder builder, SiloOptions silo, ControlPlaneOptions controlPlane, bool tls)
    {
        var dns = builder.Configuration.GetSection("Dns");
        if (!dns.Value("Enabled", false))
        {
            return;
        }
        if (string.IsNullOrEmpty(dns["ControlPlane"]))
        {
            var loopback = IPAddress.Parse(silo.ListenAddress) is var a && (a.Equals(IPAddress.Any) || a.Equals(IPAddress.IPv6Any)) ? "127.0.0.1" : silo.ListenAddress;
            dns["ControlPlane"] = silo.UnixSocket.Length > 0 ? "unix:" + silo.UnixSocket
                : tls && string.IsNullOrEmpty(dns["Certificate"]) ? throw new ControlPlane.Contracts.Hosting.InvalidConfigurationException("Invalid configuration:\n  Dns:Enabled with Tls:* needs a Silo:UnixSocket to follow, or Dns:Ca, Dns:Certificate and Dns:Key (a dns certificate) for the TLS port")
                : silo.Port > 0 ? $"{(tls ? "https" : "http")}://{(loopback.Contains(':') ? $"[{loopback}]" : loopback)}:{silo.Port}"
                : throw new ControlPlane.Contracts.Hosting.InvalidConfigurationException("Invalid configuration:\n  Dns:Enabled needs a fixed Silo:Port or a Silo:UnixSocket to follow");
        }
        var self = new Security.InternalCaller();
        builder.Services.AddSingleton(self);
        builder.Services.AddClusterDns(dns, [.. new[] { controlPlane.ServiceIpv4Cidr, controlPlane.ServiceIpv6Cidr }.Where(c => c.Length > 0)], self.Stamp());
    }

    private static IPAddress FirstAddress() =>
        System.Net.Dns.GetHostAddresses(System.Net.Dns.GetHostName()).FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(a))
        ?? IPAddress.Loopback;
}
