using System.Net;
using Xunit.Abstractions;
using ControlPlane.Contracts.V1;

namespace ControlPlane.Observability.Tests;

/// <summary>The telemetry of the real processes, read back as an operator would read it.</summary>
public sealed class TelemetryTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    private static async Task WriteAsync(ObservedCluster cluster)
    {
        await cluster.WaitForNodeAsync(Timeout);
        await cluster.Client.Namespaces.CreateAsync(new Namespace { Metadata = new ObjectMeta { Name = "ob" } });
        await cluster.Client.Networks.CreateAsync(new Network { Metadata = new ObjectMeta { Name = "blue" }, Spec = new NetworkSpec { Vni = 100, Ipv4Cidr = "10.20.0.0/16" } });
    }

    private static Task<Endpoint> CreateEndpointAsync(ObservedCluster cluster, string name) =>
        cluster.Client.Endpoints.CreateAsync(new Endpoint
        {
            Metadata = new ObjectMeta { Name = name, Namespace = "ob" },
            Spec = new EndpointSpec { Network = "blue", Node = ObservedCluster.NodeName, Ready = true },
        });

    [Fact]
    public async Task Prometheus_ScrapesSiloAgentAndDnsServer_ValuesReadBackThroughItsApi()
    {
        await using var cluster = await ObservedCluster.StartAsync();
        using var prometheus = new PrometheusServer(new Dictionary<string, string>
        {
            ["silo"] = $"127.0.0.1:{cluster.SiloMetricsPort}",
            ["agent"] = $"{cluster.AgentSide}:{cluster.AgentMetricsPort}",
            ["dns"] = $"127.0.0.1:{cluster.DnsMetricsPort}",
        });
        await WriteAsync(cluster);
        await CreateEndpointAsync(cluster, "e1");
        const int queries = 5;
        for (var i = 0; i < queries; i++)
        {
            // Any answer will do (SERVFAIL until the feed synced): each is one query the server handled.
            Shell.Must("dig", "@127.0.0.1", "-p", cluster.DnsPort.ToString(System.Globalization.CultureInfo.InvariantCulture), "+tries=1", "+time=5",
                "kubernetes.default.svc.cluster.local", "A");
        }

        // A method no service has never reaches the interceptors; it is counted all the same, under method "unknown".
        var empty = Grpc.Core.Marshallers.Create<Google.Protobuf.WellKnownTypes.Empty>(m => Google.Protobuf.MessageExtensions.ToByteArray(m), Google.Protobuf.WellKnownTypes.Empty.Parser.ParseFrom);
        var nowhere = new Grpc.Core.Method<Google.Protobuf.WellKnownTypes.Empty, Google.Protobuf.WellKnownTypes.Empty>(Grpc.Core.MethodType.Unary, "controlplane.v1.Nowhere", "Get", empty, empty);
        var unimplemented = await Assert.ThrowsAsync<Grpc.Core.RpcException>(() => cluster.Client.Invoker.AsyncUnaryCall(nowhere, null, default, new Google.Protobuf.WellKnownTypes.Empty()).ResponseAsync);
        Assert.Equal(Grpc.Core.StatusCode.Unimplemented, unimplemented.StatusCode);

        // Watches the client ended (cancelled; its deadline passed) got no status: counted as the client saw them, not as UNKNOWN.
        using (var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(300)))
        {
            await Assert.ThrowsAnyAsync<Exception>(async () => { await foreach (var _ in cluster.Client.WatchAsync(new ControlPlane.Contracts.V1.WatchRequest(), cancellationToken: cancel.Token)) { } });
        }
        var expired = await Assert.ThrowsAsync<Grpc.Core.RpcException>(async () =>
        {
            await foreach (var _ in cluster.Client.WatchAsync(new ControlPlane.Contracts.V1.WatchRequest(), new Grpc.Core.CallOptions(deadline: DateTime.UtcNow.AddMilliseconds(300)))) { }
        });
        Assert.Equal(Grpc.Core.StatusCode.DeadlineExceeded, expired.StatusCode);

        string Context() => cluster.Logs();
        var up = await prometheus.WaitAsync("up", s => s.Count(x => x.Value == 1) == 3, Timeout, Context);
        Assert.Equal(["agent", "dns", "silo"], up.Select(s => s.Labels["job"]).Order());
        // The agent and the DNS server follow the silo: their health says so, and so does their gauge.
        using (var http = new HttpClient())
        {
            foreach (var target in new[] { $"{cluster.AgentSide}:{cluster.AgentMetricsPort}", $"127.0.0.1:{cluster.DnsMetricsPort}" })
            {
                var health = await http.GetAsync($"http://{target}/healthz");
                Assert.True(health.IsSuccessStatusCode, $"{target}: {(int)health.StatusCode} {await health.Content.ReadAsStringAsync()}");
                Assert.Equal("ok\n", await health.Content.ReadAsStringAsync());
            }
            // The silo's too, and with HEAD, as monitors and load balancers probe (it was 405).
            foreach (var target in new[] { $"127.0.0.1:{cluster.SiloMetricsPort}", $"{cluster.AgentSide}:{cluster.AgentMetricsPort}" })
            {
                using var head = await http.SendAsync(new HttpRequestMessage(HttpMethod.Head, $"http://{target}/healthz"));
                Assert.True(head.IsSuccessStatusCode, $"{target}: HEAD {(int)head.StatusCode}");
            }
        }
        await prometheus.WaitAsync("controlplane_watch_current", s => s.Count == 2 && s.All(x => x.Value == 1)
            && s.Select(x => (x.Labels["job"], x.Labels["watcher"])).Order().SequenceEqual([("agent", "agent"), ("dns", "dns")]), Timeout, Context);

        await prometheus.WaitAsync("controlplane_api_calls_total{job=\"silo\",method=\"/controlplane.v1.Endpoints/Create\",code=\"OK\"}",
            s => s.Count == 1 && s[0].Value == 1, Timeout, Context);
        await prometheus.WaitAsync("controlplane_api_calls_total{job=\"silo\",method=\"/controlplane.v1.Namespaces/Get\",code!=\"OK\"}",
            s => s.Count >= 1, Timeout, Context);
        await prometheus.WaitAsync("controlplane_api_calls_total{job=\"silo\",method=\"unknown\",code=\"Unimplemented\"}",
            s => s.Count == 1 && s[0].Value == 1, Timeout, Context);
        await prometheus.WaitAsync("controlplane_api_calls_total{job=\"silo\",method=\"/controlplane.v1.Watch/Watch\",code=~\"Cancelled|DeadlineExceeded\"}",
            s => s.Count == 2 && s.All(x => x.Value >= 1), Timeout, Context);
        await prometheus.WaitAsync("controlplane_api_calls_total{job=\"silo\",method=\"/controlplane.v1.Watch/Watch\",code=\"Unknown\"}", s => s.Count == 0, Timeout, Context);
        await prometheus.WaitAsync("controlplane_api_duration_seconds_count{job=\"silo\",method=\"/controlplane.v1.Networks/Create\",code=\"OK\"}",
            s => s.Count == 1 && s[0].Value == 1, Timeout, Context);
        await prometheus.WaitAsync("controlplane_store_commit_batch_size_count{job=\"silo\"}", s => s.Count == 1 && s[0].Value >= 3, Timeout, Context);
        await prometheus.WaitAsync("controlplane_store_commit_duration_seconds_count{job=\"silo\"}", s => s.Count == 1 && s[0].Value >= 3, Timeout, Context);
        await prometheus.WaitAsync("controlplane_watch_streams{job=\"silo\"}", s => s.Count == 1 && s[0].Value >= 2, Timeout, Context);
        // Exported before any failure, at 0.
        await prometheus.WaitAsync("controlplane_store_commit_failures_total{job=\"silo\"}", s => s.Count == 1 && s[0].Value == 0, Timeout, Context);
        await prometheus.WaitAsync("controlplane_watch_lag_seconds_count{job=\"silo\"}", s => s.Count == 1 && s[0].Value > 0, Timeout, Context);
        await prometheus.WaitAsync("orleans_catalog_activations{job=\"silo\"}", s => s.Sum(x => x.Value) > 0, Timeout, Context);
        await prometheus.WaitAsync("controlplane_agent_netlink_apply_duration_seconds_count{job=\"agent\",node=\"ob-node\"}", s => s.Count == 1 && s[0].Value > 0, Timeout, Context);
        await prometheus.WaitAsync("controlplane_agent_nftables_apply_duration_seconds_count{job=\"agent\"}", s => s.Count == 1 && s[0].Value > 0, Timeout, Context);
        await prometheus.WaitAsync("controlplane_agent_policy_entries{job=\"agent\",node=\"ob-node\"}", s => s.Count == 1, Timeout, Context);
        // The agent's commit → programmed latency, as the silo measures it per node.
        await prometheus.WaitAsync("controlplane_convergence_programmed_latency_seconds_count{job=\"silo\",node=\"ob-node\"}", s => s.Count == 1 && s[0].Value > 0, Timeout, Context);
        // Each dig is one query counted, by its type and rcode.
        await prometheus.WaitAsync("sum(controlplane_dns_queries_total{job=\"dns\",type=\"A\"})", s => s.Count == 1 && s[0].Value == queries, Timeout, Context);
        // Every process exports the runtime's own meter.
        foreach (var job in (string[])["silo", "agent", "dns"])
        {
            await prometheus.WaitAsync($"dotnet_gc_collections_total{{job=\"{job}\"}}", s => s.Count > 0, Timeout, Context);
        }
        // Every process names itself with the product's version (what --version prints).
        var version = System.Text.RegularExpressions.Regex.Match(File.ReadAllText(Path.Combine(RepositoryRoot(), "Directory.Build.props")), "<Version>([^<]+)</Version>").Groups[1].Value;
        Assert.Matches(@"^\d+\.\d+\.\d+$", version);
        var targets = await prometheus.WaitAsync("target_info", s => s.Count == 3, Timeout, Context);
        Assert.All(targets, t => Assert.Equal(version, t.Labels.GetValueOrDefault("service_version")));
        // The dashboard asks only for names Prometheus has (deploy/grafana/dashboard.py writes it).
        var names = await prometheus.NamesAsync();
        var dashboard = File.ReadAllText(Path.Combine(RepositoryRoot(), "deploy", "grafana", "controlplane.json"));
        var used = System.Text.RegularExpressions.Regex.Matches(dashboard, @"\b((?:controlplane|orleans|dotnet)_[a-z_]+|up)\{")
            .Select(m => m.Groups[1].Value).Distinct().ToList();
        Assert.Contains("controlplane_agent_policy_entries", used);
        Assert.Contains("controlplane_dns_queries_total", used);
        var unknown = used.Where(n => !names.Contains(n)).ToList();
        Assert.True(unknown.Count == 0, "the dashboard uses metrics Prometheus does not have: " + string.Join(", ", unknown));
    }

    private static string RepositoryRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (!File.Exists(Path.Combine(directory.FullName, "ControlPlane.sln"))) directory = directory.Parent!;
        return directory.FullName;
    }

    [Fact]
    public async Task Otlp_OneWrite_SpansFormOneTreeFromApiToTheAgentsKernelApply()
    {
        await using var receiver = new OtlpReceiver([IPAddress.Any]);
        await receiver.StartAsync();
        await using var cluster = await ObservedCluster.StartAsync((c, process) => process == "dns" ? null : new Dictionary<string, string>
        {
            ["OTEL_EXPORTER_OTLP_ENDPOINT"] = $"http://{(process == "agent" ? c.HostSide : IPAddress.Loopback)}:{receiver.Port}",
            ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
            ["OTEL_BSP_SCHEDULE_DELAY"] = "100",
            ["OTEL_METRIC_EXPORT_INTERVAL"] = "60000",
        });
        await WriteAsync(cluster);
        await CreateEndpointAsync(cluster, "traced");
        // A refused call is an answer, not the server's failure: its span is not an error (OpenTelemetry's RPC conventions).
        Assert.Equal(Grpc.Core.StatusCode.NotFound, (await Assert.ThrowsAsync<Grpc.Core.RpcException>(() => cluster.Client.Networks.GetAsync("", "absent"))).StatusCode);

        // The API span of the create, then an agent span in its trace.
        var deadline = System.Diagnostics.Stopwatch.StartNew();
        List<ReceivedSpan> trace = [];
        ReceivedSpan? api = null, apply = null;
        while (deadline.Elapsed < Timeout)
        {
            var spans = receiver.Spans;
            api = spans.FirstOrDefault(s => s.Name == "/controlplane.v1.Endpoints/Create");
            if (api is not null)
            {
                trace = spans.Where(s => s.TraceId == api.TraceId).ToList();
                apply = trace.FirstOrDefault(s => s.Service == "controlplane-agent" && s.Name == "agent.apply netlink");
                if (apply is not null) break;
            }
            await Task.Delay(100);
        }
        Assert.True(apply is not null, $"no agent apply span in the trace of the create; spans:\n{string.Join("\n", receiver.Spans)}\n{cluster.Logs()}");
        // The agent's spans name its node (a resource attribute).
        Assert.Equal(ObservedCluster.NodeName, apply!.Node);
        for (deadline.Restart(); !receiver.Spans.Any(s => s.Name == "/controlplane.v1.Networks/Get") && deadline.Elapsed < Timeout; await Task.Delay(100))
        {
        }
        Assert.All(receiver.Spans.Where(s => s.Name == "/controlplane.v1.Networks/Get"), s => Assert.NotEqual(2, s.StatusCode));
        Assert.Contains(receiver.Spans, s => s.Name == "/controlplane.v1.Networks/Get");
        Assert.NotEqual(2, api!.StatusCode);

        // Walk up from the agent's apply to the root: every parent link resolves, within one trace.
        var byId = trace.ToDictionary(s => s.SpanId);
        var chain = new List<ReceivedSpan>();
        for (var span = apply; span is not null; span = span.ParentSpanId.Length == 0 ? null : byId.GetValueOrDefault(span.ParentSpanId))
        {
            chain.Add(span);
            Assert.True(span.ParentSpanId.Length == 0 || byId.ContainsKey(span.ParentSpanId), $"{span} has a parent the trace lacks:\n{string.Join("\n", trace)}");
        }
        chain.Reverse();
        var path = string.Join(" → ", chain.Select(s => $"{s.Service}:{s.Name}"));
        output.WriteLine(path);
        Assert.Equal(api, chain[0]);
        Assert.Equal("controlplane-silo", chain[0].Service);
        Assert.Equal("ControlPlane.Api", chain[0].Scope);
        // API → grain (Orleans' client and server spans) → the write's commit → its watch delivery → the agent's apply.
        var scopes = chain.Select(s => s.Scope).ToList();
        Assert.True(scopes.IndexOf("Microsoft.Orleans.Application") is > 0, path);
        Assert.True(chain.FindIndex(s => s.Name == "store.write") > scopes.IndexOf("Microsoft.Orleans.Application"), path);
        Assert.Equal(["store.write", "watch.deliver", "agent.apply netlink"], chain.TakeLast(3).Select(s => s.Name));
        Assert.Equal("controlplane-silo", chain[^2].Service);
        // The batch that committed the write is linked, not parented: it is a root of its own.
        Assert.Contains(receiver.Spans, s => s.Name == "store.commit" && s.ParentSpanId.Length == 0);

        // netctl: its run is a client span (flushed before it exits), and the silo's API span continues it.
        // Given the traces' own endpoint, a full URL used as it is, over the general one (which points nowhere).
        var netctl = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in (string[])[Path.Combine(RepositoryRoot(), "src", "Cli", "bin", new DirectoryInfo(AppContext.BaseDirectory).Parent!.Name, "net10.0", "netctl.dll"), "--server", "unix:" + cluster.SiloSocket, "get", "networks"]) netctl.ArgumentList.Add(arg);
        netctl.Environment["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:9";
        netctl.Environment["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = $"http://127.0.0.1:{receiver.Port}/v1/traces";
        netctl.Environment["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] = "http/protobuf";
        using (var process = System.Diagnostics.Process.Start(netctl)!)
        {
            var printed = await process.StandardOutput.ReadToEndAsync() + await process.StandardError.ReadToEndAsync();
            await process.WaitForExitAsync();
            Assert.True(process.ExitCode == 0, printed);
            Assert.Contains("blue", printed);
        }
        // Its span is exported before it exits; the silo's follows within its batch delay.
        var client = Assert.Single(receiver.Spans, s => s.Service == "netctl");
        Assert.Equal("netctl get", client.Name);
        ReceivedSpan? served = null;
        for (deadline.Restart(); served is null && deadline.Elapsed < Timeout; await Task.Delay(100))
        {
            served = receiver.Spans.FirstOrDefault(s => s.Service == "controlplane-silo" && s.ParentSpanId == client.SpanId);
        }
        Assert.True(served is not null, $"no silo span continues netctl's {client}:\n{string.Join("\n", receiver.Spans.Where(s => s.TraceId == client.TraceId))}");
        Assert.Equal(client.TraceId, served.TraceId);
        Assert.Equal("/controlplane.v1.Networks/List", served.Name);

        // A caller that does not sample its trace (flags 00): the write stays in that trace,
        // unsampled, as parent-based sampling has it; no span of it is exported, under its trace id
        // or under a new one. The write after it is traced as usual, and exported after it.
        var unsampled = System.Diagnostics.ActivityTraceId.CreateRandom().ToHexString();
        var headers = new Grpc.Core.Metadata { { "traceparent", $"00-{unsampled}-{System.Diagnostics.ActivitySpanId.CreateRandom().ToHexString()}-00" } };
        await cluster.Client.Endpoints.CreateAsync(new Endpoint
        {
            Metadata = new ObjectMeta { Name = "unsampled", Namespace = "ob" },
            Spec = new EndpointSpec { Network = "blue", Node = ObservedCluster.NodeName, Ready = true },
        }, new Grpc.Core.CallOptions(headers));
        await CreateEndpointAsync(cluster, "sampled");
        for (deadline.Restart(); !receiver.Spans.Any(s => s.Name == "store.write" && s.Key == "ob/sampled") && deadline.Elapsed < Timeout; await Task.Delay(100))
        {
        }
        Assert.Contains(receiver.Spans, s => s.Name == "store.write" && s.Key == "ob/sampled");
        Assert.DoesNotContain(receiver.Spans, s => s.TraceId == unsampled);
        Assert.DoesNotContain(receiver.Spans, s => s.Key == "ob/unsampled");
    }

    /// <summary>
    /// The DNS server's metrics and health endpoint on 0.0.0.0 answers whatever name the client
    /// used (127.0.0.1, localhost), and on an IPv6 address too; with the control plane unreachable
    /// its health is 503 saying so, and its gauge 0. (Each crashed the program or answered 404 on
    /// the exporter's HttpListener.)
    /// </summary>
    [Fact]
    public async Task DnsServer_MetricsAndHealth_OnAnyAddress_SayTheControlPlaneIsUnreachable()
    {
        using var http = new HttpClient();
        foreach (var (listen, urls) in new[]
        {
            ("0.0.0.0", (string[])["127.0.0.1", "localhost"]),
            ("[::1]", ["[::1]"]),
        })
        {
            var port = Ports.Free();
            var logs = new System.Text.StringBuilder();
            using var process = StartProgram([.. UnreachableDnsServer(), $"--Metrics:Listen={listen}:{port}"], null, logs);
            try
            {
                foreach (var host in urls)
                {
                    HttpResponseMessage? health = null;
                    for (var clock = System.Diagnostics.Stopwatch.StartNew(); clock.Elapsed < Timeout && !process.HasExited; await Task.Delay(100))
                    {
                        try
                        {
                            health = await http.GetAsync($"http://{host}:{port}/healthz");
                            if (!(await health.Content.ReadAsStringAsync()).StartsWith("not connected", StringComparison.Ordinal)) break;
                        }
                        catch (HttpRequestException)
                        {
                            // Not listening yet.
                        }
                    }
                    Assert.True(health is not null, $"no answer from {host}:{port}\n{logs}");
                    Assert.Equal(HttpStatusCode.ServiceUnavailable, health.StatusCode);
                    Assert.StartsWith("the control plane is unreachable (Unavailable", await health.Content.ReadAsStringAsync());
                    // Monitors and load balancers that probe with HEAD get the same status (it was 405).
                    using var head = await http.SendAsync(new HttpRequestMessage(HttpMethod.Head, $"http://{host}:{port}/healthz"));
                    Assert.Equal(HttpStatusCode.ServiceUnavailable, head.StatusCode);
                    var metrics = await http.GetStringAsync($"http://{host}:{port}/metrics");
                    Assert.Matches(@"controlplane_watch_current\{[^}]*watcher=""dns""[^}]*\} 0", metrics);
                }
            }
            finally
            {
                process.Kill();
                await process.WaitForExitAsync();
            }
        }
    }

    /// <summary>OpenTelemetry variables that cannot be used: netctl says which in one line and exits 1, before anything is sent.</summary>
    [Theory]
    [InlineData("OTEL_TRACES_SAMPLER", "bogus", "OTEL_TRACES_SAMPLER must be always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio, not 'bogus'")]
    [InlineData("OTEL_TRACES_SAMPLER_ARG", "2", "OTEL_TRACES_SAMPLER_ARG must be a ratio from 0 to 1, not '2'")]
    [InlineData("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "bogus", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL must be grpc or http/protobuf, not 'bogus'")]
    public async Task Netctl_WithAnUnusableTelemetryVariable_ExitsOne_NamingIt(string variable, string value, string message)
    {
        var netctl = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        netctl.ArgumentList.Add(Path.Combine(RepositoryRoot(), "src", "Cli", "bin", new DirectoryInfo(AppContext.BaseDirectory).Parent!.Name, "net10.0", "netctl.dll"));
        netctl.ArgumentList.Add("--version");
        netctl.Environment["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:9";
        netctl.Environment["OTEL_TRACES_SAMPLER"] = "parentbased_traceidratio";
        netctl.Environment[variable] = value;
        using var process = System.Diagnostics.Process.Start(netctl)!;
        var error = await process.StandardError.ReadToEndAsync();
        await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.Equal(1, process.ExitCode);
        Assert.Equal($"netctl: {message}", error.Trim());
    }

    /// <summary>A Metrics:Listen that is no address:port stops the agent and the DNS server at start, saying so (exit code 2, no stack trace).</summary>
    [Theory]
    [InlineData("ControlPlane.NodeAgent.dll", "--Agent:NodeName=bad-metrics", "--Agent:UnderlayIp=127.0.0.1")]
    [InlineData("ControlPlane.DnsServer.dll", "--Dns:Listen=127.0.0.1:0", "--Dns:ControlPlane=")]
    public void Program_WithUnusableMetricsListen_ExitsWithTheReason(string program, string first, string second)
    {
        var (code, output) = Shell.Run("dotnet", Path.Combine(AppContext.BaseDirectory, program), first, second, "--Metrics:Listen=nowhere");
        Assert.True(code == 2, $"exit code {code}:\n{output}");
        Assert.Contains("Metrics:Listen must be address:port, not 'nowhere'", output);
        Assert.DoesNotContain("   at ", output);
    }

    /// <summary>
    /// The DNS server's log as an operator reads it: by default each line begins with a UTC date and
    /// time (it had the time of day only); with Logging:Console:FormatterName=json each line is one
    /// JSON object with its timestamp (the setting was overridden); and an OTLP collector nothing
    /// listens on is said in the log as a warning (spans and metrics were dropped silently).
    /// </summary>
    [Fact]
    public async Task DnsServer_Log_HasDates_IsJsonWhenAsked_AndSaysTelemetryCannotBeExported()
    {
        var common = UnreachableDnsServer();
        var simple = await FirstLineAsync(common, new Dictionary<string, string>(), line => line.Contains("Dns", StringComparison.Ordinal));
        Assert.Matches(@"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z (info|warn|fail): ", simple);

        var collector = $"http://127.0.0.1:{Ports.Free()}";
        var json = await FirstLineAsync([.. common, "--Logging:Console:FormatterName=json"],
            new Dictionary<string, string> { ["OTEL_EXPORTER_OTLP_ENDPOINT"] = collector, ["OTEL_METRIC_EXPORT_INTERVAL"] = "500" },
            line => line.Contains("Telemetry is not being exported", StringComparison.Ordinal));
        using var parsed = System.Text.Json.JsonDocument.Parse(json);
        Assert.Equal("Warning", parsed.RootElement.GetProperty("LogLevel").GetString());
        Assert.Matches(@"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$", parsed.RootElement.GetProperty("Timestamp").GetString());
        var message = parsed.RootElement.GetProperty("Message").GetString()!;
        Assert.Contains(collector, message);
        Assert.DoesNotContain("   at ", message);

        // The silo (and the agent) are slim web hosts, which add the simple formatter themselves:
        // the setting holds there too.
        var data = Path.Combine(Path.GetTempPath(), "cp-log-" + Guid.NewGuid().ToString("N"));
        try
        {
            var silo = await FirstLineAsync([Path.Combine(AppContext.BaseDirectory, "ControlPlane.Silo.dll"), "--Silo:Port=0", $"--Silo:DataDirectory={data}",
                "--Dns:Enabled=false", "--Logging:Console:FormatterName=json"], new Dictionary<string, string>(), line => line.Contains("Store opened", StringComparison.Ordinal));
            using var siloLine = System.Text.Json.JsonDocument.Parse(silo);
            Assert.Matches(@"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$", siloLine.RootElement.GetProperty("Timestamp").GetString());
        }
        finally
        {
            if (Directory.Exists(data)) Directory.Delete(data, recursive: true);
        }
    }

    /// <summary>The DNS server's command line, on a free port, following a control plane nothing listens for.</summary>
    private static string[] UnreachableDnsServer() =>
        [Path.Combine(AppContext.BaseDirectory, "ControlPlane.DnsServer.dll"), $"--Dns:Listen=127.0.0.1:{Ports.FreeTcpAndUdp(23100, 23199)}",
            $"--Dns:ControlPlane=http://127.0.0.1:{Ports.Free()}"];

    /// <summary>Starts dotnet with <paramref name="args"/>; its output and error lines go to <paramref name="logs"/>, and each to <paramref name="line"/> as well.</summary>
    private static System.Diagnostics.Process StartProgram(string[] args, IDictionary<string, string>? environment, System.Text.StringBuilder logs, Action<string>? line = null)
    {
        var info = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args) info.ArgumentList.Add(arg);
        foreach (var (name, value) in environment ?? new Dictionary<string, string>()) info.Environment[name] = value;
        void Read(string? text)
        {
            if (text is null) return;
            lock (logs) logs.AppendLine(text);
            line?.Invoke(text);
        }
        var process = System.Diagnostics.Process.Start(info)!;
        process.OutputDataReceived += (_, e) => Read(e.Data);
        process.ErrorDataReceived += (_, e) => Read(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    /// <summary>Starts a program (dotnet with <paramref name="args"/>), returns its first output line <paramref name="wanted"/> accepts, and stops it.</summary>
    private static async Task<string> FirstLineAsync(string[] args, IDictionary<string, string> environment, Func<string, bool> wanted)
    {
        var found = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var logs = new System.Text.StringBuilder();
        using var process = StartProgram(args, environment, logs, line => { if (wanted(line)) found.TrySetResult(line); });
        try
        {
            var first = await Task.WhenAny(found.Task, Task.Delay(Timeout));
            lock (logs) Assert.True(first == found.Task, $"no such line within {Timeout}:\n{logs}");
            return await found.Task;
        }
        finally
        {
            process.Kill();
            await process.WaitForExitAsync();
        }
    }
}
