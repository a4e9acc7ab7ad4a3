using System.Text.Json.Nodes;
using ControlPlane.Contracts.V1;
using Google.Protobuf;

namespace ControlPlane.Cli.Tests;

/// <summary>netctl apply against a real silo, from the repository's examples/.</summary>
public sealed class ApplyTests
{
    [Fact]
    public async Task Apply_Examples_CreatesEveryObjectThenReportsUnchangedWithoutWriting()
    {
        await using var silo = await Silo.StartAsync();

        var first = await Netctl.RunAsync(silo, "apply", "-f", RepositoryPaths.Examples);

        Assert.True(first.ExitCode == 0, first.ToString());
        Assert.Equal(
            ["namespace/shop created", "network/blue created", "node/node-1 created", "node/node-2 created", "endpoint/shop/web-1 created",
             "endpoint/shop/web-2 created", "endpoint/shop/client created", "service/shop/web created", "networkpolicy/shop/web-from-client created"],
            first.OutputLines);
        var network = await silo.Client.Networks.GetAsync("", "blue");
        Assert.Equal(("10.10.0.0/16", "fd00:10::/64", 100u), (network.Spec.Ipv4Cidr, network.Spec.Ipv6Cidr, network.Spec.Vni));
        var client = await silo.Client.Endpoints.GetAsync("shop", "client");
        Assert.Contains("10.10.0.200", client.Status.Ips);
        Assert.Equal(2, client.Status.Ips.Count);
        var service = await silo.Client.Services.GetAsync("shop", "web");
        Assert.Equal(["IPv4", "IPv6"], service.Spec.IpFamilies);
        Assert.Equal("http", service.Spec.Ports[0].TargetPortName);
        var policy = await silo.Client.NetworkPolicies.GetAsync("shop", "web-from-client");
        Assert.Equal("client", policy.Spec.Ingress[0].Peers[0].PodSelector.MatchLabels["app"]);
        Assert.Equal("http", policy.Spec.Ingress[0].Ports[0].Name);

        var before = await silo.ObjectsAsync();
        var dryRun = await Netctl.RunAsync(silo, "apply", "--dry-run=server", "-f", RepositoryPaths.Examples);
        Assert.True(dryRun.ExitCode == 0, dryRun.ToString());
        Assert.All(dryRun.OutputLines, line => Assert.EndsWith(" unchanged (server dry run)", line));
        Assert.Equal(9, dryRun.OutputLines.Length);
        var second = await Netctl.RunAsync(silo, "apply", "-f", RepositoryPaths.Examples);

        Assert.True(second.ExitCode == 0, second.ToString());
        Assert.All(second.OutputLines, line => Assert.EndsWith(" unchanged", line));
        Assert.Equal(9, second.OutputLines.Length);
        Assert.Equal(before, await silo.ObjectsAsync());
    }

    [Fact]
    public async Task Apply_ChangedManifestFromStdin_UpdatesTheObjectUnderItsEtag()
    {
        await using var silo = await Silo.StartAsync();
        Assert.Equal(0, (await Netctl.RunAsync(silo, "apply", "-f", RepositoryPaths.Examples)).ExitCode);
        var before = await silo.Client.Endpoints.GetAsync("shop", "web-1");
        var changed = File.ReadAllText(RepositoryPaths.Example("04-endpoints.yaml")).Replace("app: web\n", "app: web\n    tier: front\n", StringComparison.Ordinal);

        var dryRun = await Netctl.RunAsync(["--server", silo.Address, "apply", "--dry-run=server", "-f", "-"], stdin: changed);
        Assert.Equal(["endpoint/shop/web-1 configured (server dry run)", "endpoint/shop/web-2 configured (server dry run)", "endpoint/shop/client unchanged (server dry run)"], dryRun.OutputLines);
        var result = await Netctl.RunAsync(["--server", silo.Address, "apply", "-f", "-"], stdin: changed);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(["endpoint/shop/web-1 configured", "endpoint/shop/web-2 configured", "endpoint/shop/client unchanged"], result.OutputLines);
        var after = await silo.Client.Endpoints.GetAsync("shop", "web-1");
        Assert.Equal("front", after.Metadata.Labels["tier"]);
        Assert.NotEqual(before.Metadata.Etag, after.Metadata.Etag);
        Assert.Equal(before.Status.Ips, after.Status.Ips);
    }

    [Fact]
    public async Task Apply_GetOutputWithAStaleEtag_IsRefusedAndChangesNothing()
    {
        await using var silo = await Silo.StartAsync();
        Assert.Equal(0, (await Netctl.RunAsync(silo, "apply", "-f", RepositoryPaths.Example("01-namespace.yaml"))).ExitCode);
        var yaml = (await Netctl.RunAsync(silo, "get", "ns", "shop", "-o", "yaml")).Output;
        Assert.Contains("etag:", yaml);
        // Someone else changes the namespace after it was read.
        var current = await silo.Client.Namespaces.GetAsync("", "shop");
        current.Metadata.Labels["owner"] = "someone-else";
        await silo.Client.Namespaces.UpdateAsync(current);
        var before = await silo.ObjectsAsync();
        using var dir = new TempDirectory();

        var result = await Netctl.RunAsync(silo, "apply", "-f", dir.File("stale.yaml", yaml.Replace("team: storefront", "team: checkout", StringComparison.Ordinal)));

        Assert.Equal(1, result.ExitCode);
        var error = Assert.Single(result.Errors);
        Assert.Contains("stale.yaml: document 1 (Namespace shop)", error);
        Assert.Contains("metadata.etag", error);
        Assert.Equal(before, await silo.ObjectsAsync());
        Assert.Equal("storefront", (await silo.Client.Namespaces.GetAsync("", "shop")).Metadata.Labels["team"]);

        // The output of get applies as it is while its etag is current.
        var fresh = (await Netctl.RunAsync(silo, "get", "ns", "shop", "-o", "yaml")).Output;
        var again = await Netctl.RunAsync(silo, "apply", "-f", dir.File("fresh.yaml", fresh.Replace("team: storefront", "team: checkout", StringComparison.Ordinal)));
        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.Equal(["namespace/shop configured"], again.OutputLines);
    }

    [Fact]
    public async Task Apply_BadManifests_ReportOneErrorPerProblemAndChangeNothing()
    {
        await using var silo = await Silo.StartAsync();
        Assert.Equal(0, (await Netctl.RunAsync(silo, "apply", "-f", RepositoryPaths.Examples)).ExitCode);
        var before = await silo.ObjectsAsync();
        using var dir = new TempDirectory();
        // A good document first: it must not be applied either.
        dir.File("bad/1-good.yaml", """
            apiVersion: controlplane/v1
            kind: Namespace
            metadata: {name: billing}
            """);
        dir.File("bad/2-bad.yaml", """
            apiVersion: controlplane/v1
            kind: Network
            metadata: {name: red}
            spec:
              vni: 0
              ipv4_cidr: 10.20.0.1/16
              colour: red
            ---
            apiVersion: controlplane/v1
            kind: Service
            metadata: {namespace: shop, name: 9web}
            spec:
              network: blue
              ports:
                - {name: http, port: 70000, protocol: TCPX}
            ---
            apiVersion: controlplane/v1
            kind: NetworkPolicy
            metadata: {namespace: shop, name: web-from-client}
            spec:
              podSelector: {matchLabels: {app: web}}
              ingress:
                - from:
                    - ipBlock: {cidr: 10.0.0.0/8, except: [11.0.0.0/16]}
                  ports:
                    - {port: 80, endPort: 70}
                    - {port: 0}
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: x}
            """);
        dir.File("bad/3-syntax.json", """{"apiVersion": "controlplane/v1", "kind": "Namespace", "metadata": {"name": "x"}""");

        var result = await Netctl.RunAsync(silo, "apply", "-f", Path.Combine(dir.Path, "bad"));

        Assert.Equal(1, result.ExitCode);
        string[] expected =
        [
            "2-bad.yaml: document 1 (Network red) (line 5): spec.vni: is required",
            "2-bad.yaml: document 1 (Network red) (line 6): spec.ipv4_cidr: '10.20.0.1/16' has host bits set; did you mean 10.20.0.0/16?",
            "2-bad.yaml: document 1 (Network red) (line 7): spec.colour: unknown field",
            "2-bad.yaml: document 2 (Service shop/9web) (line 11): metadata.name: '9web' must start with a letter",
            "2-bad.yaml: document 2 (Service shop/9web) (line 15): spec.ports[0].protocol: must be one of TCP, UDP, SCTP (is 'TCPX')",
            "2-bad.yaml: document 2 (Service shop/9web) (line 15): spec.ports[0].port: 70000 is outside 1..65535",
            "2-bad.yaml: document 3 (NetworkPolicy shop/web-from-client) (line 24): spec.ingress[0].from[0].ipBlock.except[0]: 11.0.0.0/16 must lie strictly within 10.0.0.0/8",
            "2-bad.yaml: document 3 (NetworkPolicy shop/web-from-client) (line 26): spec.ingress[0].ports[0].endPort: 70 must lie between 80 and 65535",
            // An explicit 0 is a value out of range, not a missing port.
            "2-bad.yaml: document 3 (NetworkPolicy shop/web-from-client) (line 27): spec.ingress[0].ports[1].port: 0 is outside 1..65535",
            "2-bad.yaml: document 4 (line 29): apiVersion: 'v1' is not controlplane/v1",
            "2-bad.yaml: document 4 (line 30): kind: 'Pod' is not a kind netctl applies",
            "3-syntax.json: syntax (line 2): not valid YAML or JSON",
        ];
        Assert.True(result.Errors.Length == expected.Length, result.ToString());
        for (var i = 0; i < expected.Length; i++) Assert.Contains(expected[i], result.Errors[i]);
        Assert.Contains("12 problem(s) found; nothing was changed", result.Error);
        Assert.Empty(result.Output);
        Assert.Equal(before, await silo.ObjectsAsync());
        var namespaces = await silo.Client.Namespaces.ListAsync(new ListRequest());
        Assert.Equal(["shop"], namespaces.Namespaces.Select(n => n.Metadata.Name));
    }

    [Fact]
    public async Task Apply_ServerDryRun_ReportsWhatTheServerWouldRefuseAndWritesNothing()
    {
        await using var silo = await Silo.StartAsync();
        Assert.Equal(0, (await Netctl.RunAsync(silo, "apply", "-f", RepositoryPaths.Examples)).ExitCode);
        var before = await silo.ObjectsAsync();
        using var dir = new TempDirectory();
        var conflicting = dir.File("conflicting.yaml", """
            apiVersion: controlplane/v1
            kind: Network
            metadata: {name: red}
            spec: {vni: 100, ipv4_cidr: 10.10.128.0/24}
            ---
            apiVersion: controlplane/v1
            kind: Endpoint
            metadata: {namespace: shop, name: web-1}
            spec: {network: red, node: node-1}
            ---
            apiVersion: controlplane/v1
            kind: Endpoint
            metadata: {namespace: billing, name: db}
            spec: {network: blue, node: node-9, ips: [10.11.0.5]}
            """);

        var refused = await Netctl.RunAsync(silo, "apply", "--dry-run=server", "-f", conflicting);

        Assert.Equal(1, refused.ExitCode);
        string[] expected =
        [
            "document 1 (Network red) (line 4): spec.vni: VNI 100 is already used by network 'blue'",
            "document 1 (Network red) (line 4): spec.ipv4_cidr: 10.10.128.0/24 overlaps 10.10.0.0/16 of network 'blue'",
            "document 2 (Endpoint shop/web-1) (line 9): spec.network: is immutable (the stored object has blue)",
            "document 3 (Endpoint billing/db) (line 13): metadata.namespace: namespace 'billing' exists neither on the server nor in the manifests",
            "document 3 (Endpoint billing/db) (line 14): spec.node: node 'node-9' exists neither on the server nor in the manifests",
            "document 3 (Endpoint billing/db) (line 14): spec.ips[0]: 10.11.0.5 is outside network 'blue' (10.10.0.0/16)",
        ];
        Assert.True(refused.Errors.Length == expected.Length, refused.ToString());
        foreach (var line in expected) Assert.Contains(refused.Errors, e => e.Contains(line, StringComparison.Ordinal));

        var valid = dir.File("valid.yaml", """
            apiVersion: controlplane/v1
            kind: Namespace
            metadata: {name: billing}
            ---
            apiVersion: controlplane/v1
            kind: Endpoint
            metadata: {namespace: billing, name: db}
            spec: {network: blue, node: node-2}
            """);
        var dryRun = await Netctl.RunAsync(silo, "apply", "--dry-run=server", "-f", valid);
        Assert.True(dryRun.ExitCode == 0, dryRun.ToString());
        Assert.Equal(["namespace/billing created (server dry run)", "endpoint/billing/db created (server dry run)"], dryRun.OutputLines);
        var client = await Netctl.RunAsync(["apply", "--dry-run=client", "-f", valid, "--server", "127.0.0.1:1"]);
        Assert.True(client.ExitCode == 0, client.ToString());

        // An address outside a network only the server holds is found before anything is written
        // too (the namespace before it is not created), by a plain apply and by the server dry run.
        var outside = dir.File("outside.yaml", """
            apiVersion: controlplane/v1
            kind: Namespace
            metadata: {name: extra}
            ---
            apiVersion: controlplane/v1
            kind: Endpoint
            metadata: {namespace: extra, name: y}
            spec: {network: blue, node: node-1, ips: [10.20.0.5]}
            """);
        foreach (var mode in (string[][])[[], ["--dry-run=server"]])
        {
            var outsideRefused = await Netctl.RunAsync(silo, ["apply", .. mode, "-f", outside]);
            Assert.True(outsideRefused.ExitCode == 1, outsideRefused.ToString());
            Assert.Contains(outsideRefused.Errors, e => e.Contains("(Endpoint extra/y)", StringComparison.Ordinal)
                && e.Contains("spec.ips[0]: 10.20.0.5 is outside network 'blue' (10.10.0.0/16)", StringComparison.Ordinal));
        }
        Assert.Equal(before, await silo.ObjectsAsync());
    }

    /// <summary>
    /// An apply stopped by Ctrl+C while a group of writes is under way still lists the writes it
    /// made (its lines otherwise come when the whole group is done) and says how many of all.
    /// </summary>
    [Fact]
    public async Task Apply_Interrupted_ListsTheWritesItMade()
    {
        await using var silo = await Silo.StartAsync();
        using var directory = new TempDirectory();
        var file = BulkManifest(directory);
        using var apply = Netctl.Stream(["--server", silo.Address, "apply", "-f", file, "--parallel", "4"]);
        // The first group is done (its lines are out), the endpoints' is under way.
        await apply.ReadUntilAsync(line => line == "node/bulk-node created");
        await EndpointsMadeAsync(silo, 10);

        Assert.Equal(130, await apply.SignalAsync("INT"));
        var listed = new List<string>();
        try
        {
            while (true) listed.Add(await apply.ReadLineAsync(TimeSpan.FromSeconds(5)));
        }
        catch (TimeoutException)
        {
        }
        var said = listed.Count(l => l.StartsWith("endpoint/bulk/", StringComparison.Ordinal) && l.EndsWith(" created", StringComparison.Ordinal));
        // Every page: a quick machine writes more than one page (1,000) before the signal.
        var exist = (await BulkEndpointsAsync(silo)).Count;
        Assert.True(said >= 10, string.Join("\n", listed) + apply.Error);
        // Every write it names was made; those under way when it stopped may have been made too.
        Assert.InRange(exist, said, said + 4);
        Assert.Contains($"interrupted: {said + 3} of 2003 object(s) written", apply.Error, StringComparison.Ordinal);
    }

    /// <summary>
    /// A silo killed (SIGKILL) during an apply: the writes it had under way when it died may have
    /// been made, and are reported so ("may have been made", counted unknown); a write reported
    /// as failed outright was not made, and every write reported created was. Outside testing
    /// found objects on the server that apply had reported as failed, in the same words as the
    /// writes that were never sent.
    /// </summary>
    [Fact]
    public async Task Apply_WhenItsSiloIsKilled_NoWriteItCallsFailedWasMade()
    {
        await using var silo = await Silo.StartAsync();
        using var directory = new TempDirectory();
        var file = BulkManifest(directory);
        using var apply = Netctl.Stream(["--server", silo.Address, "apply", "-f", file, "--parallel", "16"]);
        await apply.ReadUntilAsync(line => line == "node/bulk-node created");
        // The endpoints' writes are under way, sixteen at a time, when the silo dies.
        await EndpointsMadeAsync(silo, 50);
        await silo.KillAsync();

        Assert.Equal(1, await apply.ExitAsync());
        var created = (await apply.RestAsync()).Where(l => l.EndsWith(" created", StringComparison.Ordinal)).Select(l => l.Split(' ')[0]).ToHashSet();
        var errors = apply.Error.Split('\n').Where(l => l.StartsWith("error: ", StringComparison.Ordinal)).ToList();
        static string Named(string line) => "endpoint/" + System.Text.RegularExpressions.Regex.Match(line, @"\(Endpoint ([^)]+)\)").Groups[1].Value;
        var unknown = errors.Where(l => l.Contains("this write may have been made", StringComparison.Ordinal)).Select(Named).ToHashSet();
        var failed = errors.Where(l => l.Contains("(Endpoint ", StringComparison.Ordinal) && !l.Contains("this write may have been made", StringComparison.Ordinal)).Select(Named).ToHashSet();
        Assert.True(failed.Count > 0, string.Join("\n", errors.Select(l => System.Text.RegularExpressions.Regex.Replace(l, @"document \d+ \(Endpoint [^)]+\)", "")).GroupBy(l => l).Select(g => $"{g.Count()} {g.Key}")));

        await silo.StartAgainAsync();
        var exist = await BulkEndpointsAsync(silo);
        var context = $"{exist.Count} exist, {created.Count(c => c.StartsWith("endpoint/", StringComparison.Ordinal))} said created, {unknown.Count} unknown, {failed.Count} failed";
        Assert.Empty(failed.Intersect(exist));
        Assert.Subset(exist, created.Where(c => c.StartsWith("endpoint/", StringComparison.Ordinal)).ToHashSet());
        Assert.Superset(exist, created.Where(c => c.StartsWith("endpoint/", StringComparison.Ordinal)).Union(unknown).ToHashSet());
        Assert.True(unknown.Count == 0 || apply.Error.Contains($"{unknown.Count} write(s) may have been made", StringComparison.Ordinal), context + "\n" + apply.Error[..Math.Min(2000, apply.Error.Length)]);
    }

    /// <summary>A manifest of namespace bulk, network bulknet, node bulk-node and 2,000 endpoints e0… on them.</summary>
    private static string BulkManifest(TempDirectory directory)
    {
        var manifest = new System.Text.StringBuilder("apiVersion: controlplane/v1\nkind: Namespace\nmetadata:\n  name: bulk\n");
        manifest.Append("---\napiVersion: controlplane/v1\nkind: Network\nmetadata:\n  name: bulknet\nspec:\n  vni: 4242\n  ipv4_cidr: 10.42.0.0/16\n");
        manifest.Append("---\napiVersion: controlplane/v1\nkind: Node\nmetadata:\n  name: bulk-node\nspec:\n  underlay_ip: 198.51.100.42\n");
        for (var i = 0; i < 2000; i++)
            manifest.Append($"---\napiVersion: controlplane/v1\nkind: Endpoint\nmetadata:\n  name: e{i}\n  namespace: bulk\nspec:\n  network: bulknet\n  node: bulk-node\n");
        return directory.File("bulk.yaml", manifest.ToString());
    }

    /// <summary>Waits (up to 30 s) until <paramref name="count"/> endpoints have been created.</summary>
    private static async Task EndpointsMadeAsync(Silo silo, int count)
    {
        var made = 0;
        using var watch = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await foreach (var e in silo.Client.WatchAsync(new Contracts.V1.WatchRequest { Kinds = { Contracts.V1.Kind.Endpoint } }, Contracts.Client.Calls.Until(watch.Token)))
        {
            if (e.Type == Contracts.V1.EventType.Added && ++made == count) return;
        }
    }

    /// <summary>Every endpoint of namespace bulk, as "endpoint/bulk/NAME", read page by page.</summary>
    private static async Task<HashSet<string>> BulkEndpointsAsync(Silo silo)
    {
        var exist = new HashSet<string>();
        for (var page = new Contracts.V1.ListRequest { Namespace = "bulk", PageSize = 1000 }; ;)
        {
            var listed = await silo.Client.Endpoints.ListAsync(page);
            exist.UnionWith(listed.Endpoints.Select(e => $"endpoint/bulk/{e.Metadata.Name}"));
            if (listed.NextPageToken.Length == 0) return exist;
            page.PageToken = listed.NextPageToken;
        }
    }

    /// <summary>A huge refused value is quoted cut short, as the server quotes it, not echoed whole.</summary>
    [Fact]
    public async Task Apply_AHugeRefusedValue_IsQuotedCutShort()
    {
        var value = new string('x', 100_000);
        var manifest = $"apiVersion: controlplane/v1\nkind: Namespace\nmetadata:\n  name: big\n  labels:\n    a: {value}\n";
        var client = await Netctl.RunAsync(["apply", "--dry-run=client", "-f", "-", "--server", "127.0.0.1:1"], stdin: manifest);
        Assert.Equal(1, client.ExitCode);
        var line = Assert.Single(client.Errors);
        Assert.EndsWith($"metadata.labels.a: label value '{value[..64]}…' (100000 characters) must be at most 63 characters", line);
        Assert.True(line.Length < 300, $"{line.Length} characters");
    }

    /// <summary>
    /// Addresses and prefixes the server refuses (octal-looking or leading-zero parts, special
    /// ranges, mapped IPv6) are refused by both dry runs, before any call, with the server's own
    /// words for the same field: netctl runs the server's rules (Contracts/Addressing). Each
    /// input is also sent to the server, whose INVALID_ARGUMENT must read as netctl's line ends.
    /// </summary>
    [Fact]
    public async Task Apply_AddressesTheServerRefuses_AreRefusedByBothDryRunsWithTheServersMessage()
    {
        (string Yaml, IMessage Message)[] cases =
        [
            .. new[] { "010.39.0.0/16", "127.0.0.0/16", "169.254.0.0/16", "224.0.0.0/8", "0.0.0.0/8", "10.1.0.0/016" }.Select((cidr, i) =>
                ($"kind: Network\nmetadata: {{name: net-{i}}}\nspec: {{vni: {100 + i}, ipv4_cidr: \"{cidr}\"}}\n",
                 (IMessage)new Network { Metadata = new ObjectMeta { Name = $"net-{i}" }, Spec = new NetworkSpec { Vni = 100u + (uint)i, Ipv4Cidr = cidr } })),
            .. new[] { "127.0.0.1", "224.0.0.1", "169.254.1.1", "fe80::1", "::ffff:10.0.0.1", "10.0.0.01", "ff02::1" }.Select((ip, i) =>
                ($"kind: Node\nmetadata: {{name: node-{i}}}\nspec: {{underlay_ip: \"{ip}\"}}\n",
                 (IMessage)new Node { Metadata = new ObjectMeta { Name = $"node-{i}" }, Spec = new NodeSpec { UnderlayIp = ip } })),
            ("kind: Endpoint\nmetadata: {namespace: shop, name: ep}\nspec: {network: blue, node: node-1, ips: [\"10.10.0.0207\"]}\n",
             new Endpoint { Metadata = new ObjectMeta { Namespace = "shop", Name = "ep" }, Spec = new EndpointSpec { Network = "blue", Node = "node-1", Ips = { "10.10.0.0207" } } }),
            ("kind: NetworkPolicy\nmetadata: {namespace: shop, name: pol}\nspec: {pod_selector: {}, ingress: [{peers: [{ip_block: {cidr: \"010.0.0.0/8\"}}]}]}\n",
             new NetworkPolicy
             {
                 Metadata = new ObjectMeta { Namespace = "shop", Name = "pol" },
                 Spec = new NetworkPolicySpec { PodSelector = new LabelSelector(), Ingress = { new NetworkPolicyRule { Peers = { new NetworkPolicyPeer { IpBlock = new IPBlock { Cidr = "010.0.0.0/8" } } } } } },
             }),
            ("kind: Service\nmetadata: {namespace: shop, name: svc}\nspec: {network: blue, cluster_ips: [\"10.96.0.010\"], ports: [{name: http, port: 80}]}\n",
             new Service
             {
                 Metadata = new ObjectMeta { Namespace = "shop", Name = "svc" },
                 Spec = new ServiceSpec { Network = "blue", ClusterIps = { "10.96.0.010" }, Ports = { new ServicePort { Name = "http", Port = 80 } } },
             }),
        ];
        var manifest = string.Join("---\n", cases.Select(c => "apiVersion: controlplane/v1\n" + c.Yaml));
        await using var silo = await Silo.StartAsync();
        Assert.Equal(0, (await Netctl.RunAsync(silo, "apply", "-f", RepositoryPaths.Example("01-namespace.yaml"), "-f", RepositoryPaths.Example("02-network.yaml"))).ExitCode);
        var before = await silo.ObjectsAsync();

        var client = await Netctl.RunAsync(["apply", "--dry-run=client", "-f", "-", "--server", "127.0.0.1:1"], stdin: manifest);
        var server = await Netctl.RunAsync(["--server", silo.Address, "apply", "--dry-run=server", "-f", "-"], stdin: manifest);

        foreach (var result in new[] { client, server })
        {
            Assert.True(result.ExitCode == 1 && result.Errors.Length == cases.Length, result.ToString());
            Assert.Contains($"{cases.Length} problem(s) found; nothing was changed", result.Error);
            Assert.Empty(result.Output);
        }
        for (var i = 0; i < cases.Length; i++)
        {
            var refused = await Assert.ThrowsAsync<Grpc.Core.RpcException>(() => CreateAsync(silo.Client, cases[i].Message));
            Assert.Equal(Grpc.Core.StatusCode.InvalidArgument, refused.StatusCode);
            // The manifests use the proto names, so netctl's field path is the server's.
            Assert.EndsWith($"(line {5 * i + 4}): {refused.Status.Detail}", client.Errors[i]);
            Assert.EndsWith($"(line {5 * i + 4}): {refused.Status.Detail}", server.Errors[i]);
        }
        Assert.Equal(before, await silo.ObjectsAsync());
    }

    private static Task CreateAsync(ControlPlane.Contracts.Client.ControlPlaneClient client, IMessage message) => message switch
    {
        Network network => client.Networks.CreateAsync(network),
        Node node => client.Nodes.CreateAsync(node),
        Endpoint endpoint => client.Endpoints.CreateAsync(endpoint),
        NetworkPolicy policy => client.NetworkPolicies.CreateAsync(policy),
        Service service => client.Services.CreateAsync(service),
        _ => throw new ArgumentException(message.Descriptor.Name),
    };

    /// <summary>
    /// Kubernetes' DNS conformance test "should provide DNS for ExternalName services" turns an
    /// ExternalName service into a ClusterIP one and back; netctl's plan used to refuse that
    /// ("spec.type: is immutable") although the server takes it. The plan and the server share
    /// one rule: to and from ExternalName goes through, ClusterIP to Headless is refused by the
    /// plan with the server's reason, before anything is sent.
    /// </summary>
    [Fact]
    public async Task Apply_ChangesAServiceToAndFromExternalName_AndRefusesClusterIpToHeadless_AsTheServerDoes()
    {
        await using var silo = await Silo.StartAsync();
        Assert.Equal(0, (await Netctl.RunAsync(silo, "apply", "-f", RepositoryPaths.Example("01-namespace.yaml"), "-f", RepositoryPaths.Example("02-network.yaml"))).ExitCode);
        const string External = "apiVersion: controlplane/v1\nkind: Service\nmetadata: {namespace: shop, name: dns-test}\nspec: {type: ExternalName, externalName: foo.example.com}\n";
        const string ClusterIp = "apiVersion: controlplane/v1\nkind: Service\nmetadata: {namespace: shop, name: dns-test}\nspec: {type: ClusterIP, network: blue, ports: [{name: http, port: 80}]}\n";
        const string Headless = "apiVersion: controlplane/v1\nkind: Service\nmetadata: {namespace: shop, name: dns-test}\nspec: {type: Headless, network: blue}\n";

        Assert.Equal(["service/shop/dns-test created"], (await Netctl.RunAsync(["--server", silo.Address, "apply", "-f", "-"], stdin: External)).OutputLines);
        var toClusterIp = await Netctl.RunAsync(["--server", silo.Address, "apply", "-f", "-"], stdin: ClusterIp);
        Assert.True(toClusterIp.ExitCode == 0, toClusterIp.ToString());
        Assert.Equal(["service/shop/dns-test configured"], toClusterIp.OutputLines);
        var service = await silo.Client.Services.GetAsync("shop", "dns-test");
        Assert.Equal(ServiceType.ClusterIp, service.Spec.Type);
        Assert.NotEmpty(service.Status.ClusterIps);

        var headless = await Netctl.RunAsync(["--server", silo.Address, "apply", "-f", "-"], stdin: Headless);
        Assert.Equal(1, headless.ExitCode);
        Assert.Contains(headless.Errors, e => e.Contains("spec.type: cannot change from CLUSTER_IP to HEADLESS: a service changes type only to or from EXTERNAL_NAME", StringComparison.Ordinal));
        Assert.Equal(service, await silo.Client.Services.GetAsync("shop", "dns-test"));

        var back = await Netctl.RunAsync(["--server", silo.Address, "apply", "-f", "-"], stdin: External);
        Assert.True(back.ExitCode == 0, back.ToString());
        var external = await silo.Client.Services.GetAsync("shop", "dns-test");
        Assert.Equal(ServiceType.ExternalName, external.Spec.Type);
        Assert.Empty(external.Status.ClusterIps);
    }

    /// <summary>
    /// Session affinity back from ClientIP to None (spelt out or left out) is a change the plan
    /// sees and makes; applying None again is then unchanged.
    /// </summary>
    [Fact]
    public async Task Apply_SessionAffinityBackToNone_IsConfigured()
    {
        await using var silo = await Silo.StartAsync();
        Assert.Equal(0, (await Netctl.RunAsync(silo, "apply", "-f", RepositoryPaths.Example("01-namespace.yaml"), "-f", RepositoryPaths.Example("02-network.yaml"))).ExitCode);
        static string Service(string affinity) => $"apiVersion: controlplane/v1\nkind: Service\nmetadata: {{namespace: shop, name: sticky}}\nspec: {{network: blue, ports: [{{name: http, port: 80}}]{affinity}}}\n";

        Assert.Equal(["service/shop/sticky created"], (await Netctl.RunAsync(["--server", silo.Address, "apply", "-f", "-"], stdin: Service(", sessionAffinity: ClientIP"))).OutputLines);
        var none = await Netctl.RunAsync(["--server", silo.Address, "apply", "-f", "-"], stdin: Service(", sessionAffinity: None"));
        Assert.Equal(["service/shop/sticky configured"], none.OutputLines);
        Assert.Equal(SessionAffinity.None, (await silo.Client.Services.GetAsync("shop", "sticky")).Spec.SessionAffinity);
        Assert.Equal(["service/shop/sticky unchanged"], (await Netctl.RunAsync(["--server", silo.Address, "apply", "-f", "-"], stdin: Service(""))).OutputLines);

        Assert.Equal(0, (await Netctl.RunAsync(["--server", silo.Address, "apply", "-f", "-"], stdin: Service(", sessionAffinity: ClientIP"))).ExitCode);
        Assert.Equal(["service/shop/sticky configured"], (await Netctl.RunAsync(["--server", silo.Address, "apply", "-f", "-"], stdin: Service(""))).OutputLines);
        Assert.Equal(SessionAffinity.None, (await silo.Client.Services.GetAsync("shop", "sticky")).Spec.SessionAffinity);
    }

    /// <summary>The client's checks are the server's: an upper-case externalName, which the server refuses, is refused before any call.</summary>
    [Fact]
    public async Task Apply_DryRunClient_RefusesAnUpperCaseExternalName_AsTheServerDoes()
    {
        const string Manifest = "apiVersion: controlplane/v1\nkind: Service\nmetadata: {namespace: shop, name: ext}\nspec: {type: ExternalName, externalName: Upper.Example.COM}\n";

        var client = await Netctl.RunAsync(["apply", "--dry-run=client", "-f", "-", "--server", "127.0.0.1:1"], stdin: Manifest);

        Assert.Equal(1, client.ExitCode);
        Assert.Contains(client.Errors, e => e.Contains("spec.externalName: 'Upper.Example.COM' must be", StringComparison.Ordinal));
        await using var silo = await Silo.StartAsync();
        Assert.Equal(0, (await Netctl.RunAsync(silo, "apply", "-f", RepositoryPaths.Example("01-namespace.yaml"))).ExitCode);
        var server = await silo.Client.Services.CreateAsync(new Service
        {
            Metadata = new ObjectMeta { Namespace = "shop", Name = "ext" },
            Spec = new ServiceSpec { Type = ServiceType.ExternalName, ExternalName = "Upper.Example.COM" },
        }).ContinueWith(t => t.Exception?.InnerException as Grpc.Core.RpcException);
        Assert.Equal(Grpc.Core.StatusCode.InvalidArgument, server?.StatusCode);
    }

    /// <summary>
    /// As in Kubernetes, a service's port needs a name only when the service has two or more: one
    /// unnamed port is accepted by netctl's checks and by the silo alike, and two ports with one
    /// unnamed are refused by both, naming the field.
    /// </summary>
    [Fact]
    public async Task Apply_ServiceWithOneUnnamedPort_IsAccepted_TwoPortsNeedNames_OnBothSides()
    {
        await using var silo = await Silo.StartAsync();
        Assert.Equal(0, (await Netctl.RunAsync(silo, "apply", "-f", RepositoryPaths.Example("01-namespace.yaml"), "-f", RepositoryPaths.Example("02-network.yaml"))).ExitCode);
        const string One = "apiVersion: controlplane/v1\nkind: Service\nmetadata: {namespace: shop, name: db}\nspec: {network: blue, selector: {app: db}, ports: [{port: 5432, targetPort: 6432}]}\n";
        const string Two = "apiVersion: controlplane/v1\nkind: Service\nmetadata: {namespace: shop, name: db2}\nspec: {network: blue, selector: {app: db}, ports: [{port: 5432}, {name: admin, port: 5433}]}\n";

        var client = await Netctl.RunAsync(["--server", silo.Address, "apply", "--dry-run=client", "-f", "-"], stdin: One);
        Assert.True(client.ExitCode == 0, client.ToString());
        var one = await Netctl.RunAsync(["--server", silo.Address, "apply", "-f", "-"], stdin: One);
        Assert.True(one.ExitCode == 0, one.ToString());
        Assert.Equal(["service/shop/db created"], one.OutputLines);
        var port = Assert.Single((await silo.Client.Services.GetAsync("shop", "db")).Spec.Ports);
        Assert.Equal(("", 5432u, 6432u), (port.Name, port.Port, port.TargetPortNumber));
        Assert.Equal(["service/shop/db unchanged"], (await Netctl.RunAsync(["--server", silo.Address, "apply", "-f", "-"], stdin: One)).OutputLines);

        var two = await Netctl.RunAsync(["--server", silo.Address, "apply", "-f", "-"], stdin: Two);
        Assert.Equal(1, two.ExitCode);
        Assert.Contains("spec.ports[0].name: is required when a service has more than one port", Assert.Single(two.Errors));
        var server = await Assert.ThrowsAsync<Grpc.Core.RpcException>(() => silo.Client.Services.CreateAsync(new Service
        {
            Metadata = new ObjectMeta { Namespace = "shop", Name = "db2" },
            Spec = new ServiceSpec { Network = "blue", Ports = { new ServicePort { Port = 5432 }, new ServicePort { Name = "admin", Port = 5433 } } },
        }));
        Assert.Equal(Grpc.Core.StatusCode.InvalidArgument, server.StatusCode);
        Assert.Equal("spec.ports[0].name: is required when a service has more than one port", server.Status.Detail);
    }

    [Fact]
    public async Task Apply_JsonListOnStdinWithNamespaceFlag_CreatesItsItems()
    {
        await using var silo = await Silo.StartAsync();
        Assert.Equal(0, (await Netctl.RunAsync(silo, "apply", "-f", RepositoryPaths.Examples)).ExitCode);
        var list = new JsonObject
        {
            ["apiVersion"] = "controlplane/v1",
            ["kind"] = "List",
            ["items"] = new JsonArray(
                JsonNode.Parse("""{"apiVersion":"controlplane/v1","kind":"Endpoint","metadata":{"name":"api-1","labels":{"app":"api"}},"spec":{"network":"blue","node":"node-1","ports":[{"name":"grpc","port":9000,"protocol":"TCP"}]}}"""),
                JsonNode.Parse("""{"apiVersion":"controlplane/v1","kind":"Service","metadata":{"name":"api"},"spec":{"type":"Headless","network":"blue","selector":{"app":"api"},"ports":[{"name":"grpc","port":9000,"target_port_number":9000}]}}""")),
        };

        var result = await Netctl.RunAsync(["--server", silo.Address, "-n", "shop", "apply", "-f", "-"], stdin: list.ToJsonString());

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(["endpoint/shop/api-1 created", "service/shop/api created"], result.OutputLines);
        Assert.Equal(ServiceType.Headless, (await silo.Client.Services.GetAsync("shop", "api")).Spec.Type);

        // -n must agree with a namespace the manifest names.
        var mismatch = await Netctl.RunAsync(["--server", silo.Address, "-n", "other", "apply", "-f", RepositoryPaths.Example("04-endpoints.yaml")]);
        Assert.Equal(1, mismatch.ExitCode);
        Assert.Equal(3, mismatch.Errors.Length);
        Assert.All(mismatch.Errors, e => Assert.Contains("metadata.namespace: 'shop' differs from -n other", e));
    }

    [Fact]
    public async Task Apply_LongApplyOnATerminal_ShowsProgressThenASummary()
    {
        await using var silo = await Silo.StartAsync();
        Assert.Equal(0, (await Netctl.RunAsync(silo, "apply", "-f", RepositoryPaths.Examples)).ExitCode);
        using var dir = new TempDirectory();
        var manifest = dir.File("many.yaml", string.Concat(Enumerable.Range(0, 30).Select(i => $$"""
            ---
            apiVersion: controlplane/v1
            kind: Endpoint
            metadata: {namespace: shop, name: many-{{i}}}
            spec: {network: blue, node: node-1}

            """)));
        var netctl = Path.Combine(AppContext.BaseDirectory, "netctl.dll");

        // script(1) gives netctl a terminal for standard output and error.
        var result = await Netctl.RunProgramAsync("script", ["-qec", $"dotnet {netctl} --server {silo.Address} apply -f {manifest}", "/dev/null"]);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("applying 30 objects", result.Output);
        Assert.Contains("100%", result.Output);
        Assert.Contains("30 created, 0 configured, 0 unchanged, 0 failed", result.Output);
        Assert.DoesNotContain("endpoint/shop/many-0 created", result.Output);
        Assert.Equal(30, (await silo.Client.Endpoints.ListAsync(new ListRequest { Namespace = "shop" })).Endpoints.Count(e => e.Metadata.Name.StartsWith("many-", StringComparison.Ordinal)));
    }
}
