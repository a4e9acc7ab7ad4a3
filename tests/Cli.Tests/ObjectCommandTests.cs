using System.Text.Json.Nodes;
using ControlPlane.Contracts.V1;

namespace ControlPlane.Cli.Tests;

/// <summary>get, describe, delete, explain and node status on the examples.</summary>
public sealed class ObjectCommandTests
{
    [Fact]
    public async Task Get_FormatsSelectorsAndNamespaces_ShowTheStoredObjects()
    {
        await using var silo = await Silo.StartAsync();
        Assert.Equal(0, (await Netctl.RunAsync(silo, "apply", "-f", RepositoryPaths.Examples)).ExitCode);

        var json = await Netctl.RunAsync(silo, "get", "endpoints", "-n", "shop", "-o", "json");
        Assert.True(json.ExitCode == 0, json.ToString());
        var list = JsonNode.Parse(json.Output)!;
        Assert.Equal("List", (string?)list["kind"]);
        var items = list["items"]!.AsArray();
        Assert.Equal(["client", "web-1", "web-2"], items.Select(i => (string?)i!["metadata"]!["name"]).Order());
        Assert.All(items, i => Assert.Equal("Endpoint", (string?)i!["kind"]));
        Assert.All(items, i => Assert.Equal(2, i!["status"]!["ips"]!.AsArray().Count));

        var selected = await Netctl.RunAsync(silo, "get", "ep", "-A", "-l", "app=web", "-o", "name");
        Assert.Equal(["endpoint/shop/web-1", "endpoint/shop/web-2"], selected.OutputLines.Order());
        var notWeb = await Netctl.RunAsync(silo, "get", "ep", "-A", "-l", "app!=web", "-o", "name");
        Assert.Equal(["endpoint/shop/client"], notWeb.OutputLines);

        var table = await Netctl.RunAsync(silo, "get", "svc", "-A");
        Assert.Equal(["NAMESPACE", "NAME", "TYPE", "NETWORK", "CLUSTER-IPS", "PORTS", "AGE"], table.OutputLines[0].Split(' ', StringSplitOptions.RemoveEmptyEntries));
        var row = table.OutputLines[1].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var service = await silo.Client.Services.GetAsync("shop", "web");
        Assert.Equal(["shop", "web", "ClusterIP", "blue", string.Join(",", service.Status.ClusterIps), "80:http/TCP"], row[..6]);

        var wide = await Netctl.RunAsync(silo, "get", "networks", "-o", "wide");
        Assert.Contains("GATEWAYS", wide.OutputLines[0]);
        Assert.Contains("10.10.0.1,fd00:10::1", wide.OutputLines[1]);

        var yaml = await Netctl.RunAsync(silo, "get", "netpol", "shop/web-from-client", "-o", "yaml");
        Assert.StartsWith("apiVersion: controlplane/v1\nkind: NetworkPolicy\n", yaml.Output);
        Assert.Contains("pod_selector:", yaml.Output);

        var missing = await Netctl.RunAsync(silo, "get", "svc", "shop/nope");
        Assert.Equal(1, missing.ExitCode);
        Assert.Equal(["error: service 'shop/nope' not found"], missing.Errors);

        // Several names: those that exist are shown, each missing one is an error (as kubectl does).
        var some = await Netctl.RunAsync(silo, "get", "ep", "-n", "shop", "web-1", "nope", "web-2", "-o", "name");
        Assert.Equal(1, some.ExitCode);
        Assert.Equal(["endpoint/shop/web-1", "endpoint/shop/web-2"], some.OutputLines);
        Assert.Equal(["error: endpoint 'shop/nope' not found"], some.Errors);

        // A selector no label can match (a value of 64 characters) is a usage error, not an empty list.
        var tooLong = await Netctl.RunAsync(silo, "get", "ep", "-A", "-l", "controlplane.io/container-id=" + new string('a', 64));
        Assert.Equal(2, tooLong.ExitCode);
        Assert.Contains("must be at most 63 characters", Assert.Single(tooLong.Errors), StringComparison.Ordinal);
    }

    /// <summary>
    /// kubectl's KIND/NAME form in get, describe and delete: what get -o name prints goes back in
    /// as it is (a cluster-scoped peer, namespaced endpoints with their namespace), several
    /// objects and kinds at once, and NAME with -n; the two forms do not mix.
    /// </summary>
    [Fact]
    public async Task KindSlashName_GetOutputNameGoesBackIntoGetDescribeAndDelete()
    {
        await using var silo = await Silo.StartAsync();
        Assert.Equal(0, (await Netctl.RunAsync(silo, "apply", "-f", RepositoryPaths.Examples)).ExitCode);
        var peer = $"apiVersion: controlplane/v1\nkind: ClusterPeer\nmetadata: {{name: north}}\nspec: {{addresses: [http://127.0.0.1:{ConnectionTests.ClosedPort()}]}}\n";
        Assert.Equal(0, (await Netctl.RunAsync(["--server", silo.Address, "apply", "-f", "-"], stdin: peer)).ExitCode);

        var peers = await Netctl.RunAsync(silo, "get", "clusterpeers", "-o", "name");
        Assert.Equal(["clusterpeer/north"], peers.OutputLines);
        var peerByName = await Netctl.RunAsync(silo, "get", "clusterpeer/north");
        Assert.True(peerByName.ExitCode == 0, peerByName.ToString());
        Assert.StartsWith("north ", peerByName.OutputLines[1]);

        // Several names of several kinds: a table per kind, or one List.
        var two = await Netctl.RunAsync(silo, "get", "svc/web", "ep/web-1", "ep/web-2", "-n", "shop");
        Assert.True(two.ExitCode == 0, two.ToString());
        Assert.Equal(["NAME", "TYPE", "NETWORK", "CLUSTER-IPS", "PORTS", "AGE"], two.OutputLines[0].Split(' ', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("web ", two.OutputLines[1]);
        Assert.Equal(["NAME", "NETWORK", "NODE", "READY", "IPS", "AGE"], two.OutputLines[2].Split(' ', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal(["web-1", "web-2"], two.OutputLines[3..].Select(l => l.Split(' ')[0]));
        // Kinds joined by commas, as kubectl takes them: a table per kind, each with every object of its kind.
        var kinds = await Netctl.RunAsync(silo, "get", "svc,ep", "-n", "shop", "-o", "name");
        Assert.True(kinds.ExitCode == 0, kinds.ToString());
        Assert.Equal(["service/shop/web", "endpoint/shop/client", "endpoint/shop/web-1", "endpoint/shop/web-2"], kinds.OutputLines);
        Assert.Contains("separate kinds with single commas", (await Netctl.RunAsync(silo, "get", "svc,,ep")).Error);
        var list = JsonNode.Parse((await Netctl.RunAsync(silo, "get", "service/shop/web", "endpoint/shop/web-1", "-o", "json")).Output)!;
        Assert.Equal([("Service", "web"), ("Endpoint", "web-1")], list["items"]!.AsArray().Select(i => ((string)i!["kind"]!, (string)i["metadata"]!["name"]!)));

        var endpoints = (await Netctl.RunAsync(silo, "get", "ep", "-n", "shop", "-o", "name")).OutputLines;
        Assert.Equal(["endpoint/shop/client", "endpoint/shop/web-1", "endpoint/shop/web-2"], endpoints.Order());
        var again = await Netctl.RunAsync(silo, ["get", .. endpoints, "-o", "name"]);
        Assert.Equal(endpoints, again.OutputLines);
        var missing = await Netctl.RunAsync(silo, "get", "svc/web", "svc/nope", "-n", "shop", "-o", "name");
        Assert.Equal(1, missing.ExitCode);
        Assert.Equal(["service/shop/web"], missing.OutputLines);
        Assert.Equal(["error: service 'shop/nope' not found"], missing.Errors);
        // An empty listing names the namespace listed, so a mistyped -n shows for what it is.
        var empty = await Netctl.RunAsync(silo, "get", "endpoints", "-n", "shopp");
        Assert.True(empty.ExitCode == 0, empty.ToString());
        Assert.Equal("No endpoints found in namespace shopp.", empty.Error.Trim());

        var described = await Netctl.RunAsync(silo, "describe", "cp/north", "svc/shop/web");
        Assert.True(described.ExitCode == 0, described.ToString());
        Assert.Contains("Name:         north\nKind:         ClusterPeer\n", described.Output);
        Assert.Contains("Name:         web\nNamespace:    shop\nKind:         Service\n", described.Output);

        // The forms do not mix; a derived kind cannot be deleted.
        var mixed = await Netctl.RunAsync(silo, "get", "svc/web", "web-1", "-n", "shop");
        Assert.Equal(2, mixed.ExitCode);
        Assert.Contains("'web-1': after a KIND/NAME argument, name every object as KIND/NAME", Assert.Single(mixed.Errors));
        Assert.Equal(2, (await Netctl.RunAsync(silo, "delete", "sep/shop/web")).ExitCode);
        // After a KIND, a NAMESPACE/NAME whose namespace is a kind's name may be a KIND/NAME meant:
        // a delete refuses it, deleting nothing; a get of a name across all namespaces is refused.
        var guessed = await Netctl.RunAsync(silo, "delete", "ep", "shop/client", "svc/web");
        Assert.Equal(2, guessed.ExitCode);
        Assert.Contains("'svc/web': after KIND, NAMESPACE/NAME is read, and 'svc' is also a kind's name", Assert.Single(guessed.Errors));
        Assert.Equal("client", (await silo.Client.Endpoints.GetAsync("shop", "client")).Metadata.Name);
        var across = await Netctl.RunAsync(silo, "get", "ep", "web-1", "-n", "shop", "-A");
        Assert.Equal(2, across.ExitCode);
        Assert.Contains("-A lists all namespaces, and a named object is read from one", Assert.Single(across.Errors));

        // delete takes them too, dependents first whatever the order given.
        var deleted = await Netctl.RunAsync(silo, ["delete", "clusterpeer/north", .. endpoints]);
        Assert.True(deleted.ExitCode == 0, deleted.ToString());
        Assert.Equal([.. endpoints.Select(e => e + " deleted"), "clusterpeer/north deleted"], deleted.OutputLines);
        Assert.Empty((await silo.Client.Endpoints.ListAsync(new ListRequest())).Endpoints);
        Assert.Empty((await silo.Client.ClusterPeers.ListAsync(new ListRequest())).ClusterPeers);
    }

    /// <summary>
    /// wait --for=programmed: the example nodes have no agents, so once the control plane has
    /// given them their chance to report they are "catching up" and not counted; the wait then
    /// completes on 0 of 0 and says which nodes are catching up. Kinds nodes do not program, and
    /// other conditions, are usage errors.
    /// </summary>
    [Fact]
    public async Task Wait_ForProgrammed_CountsOnlyNodesWhoseAgentsReport()
    {
        await using var silo = await Silo.StartAsync();
        Assert.Equal(0, (await Netctl.RunAsync(silo, "apply", "-f", RepositoryPaths.Examples)).ExitCode);
        var etag = (await silo.Client.Endpoints.GetAsync("shop", "web-1")).Metadata.Etag;

        var waited = await Netctl.RunAsync(silo, "wait", "ep", "shop/web-1", "--for=programmed", "--timeout", "30s");
        Assert.True(waited.ExitCode == 0, waited.ToString());
        Assert.Equal([$"endpoint/shop/web-1 programmed (etag {etag}) on 0 of 0 counted nodes; catching up: node-1, node-2"], waited.OutputLines);
        var status = (await silo.Client.Endpoints.GetAsync("shop", "web-1")).Status.Programmed;
        Assert.Equal((0u, 0u, etag), (status.ProgrammedNodes, status.ReadyNodes, status.Etag));
        Assert.Equal(["node-1", "node-2"], status.CatchingUp);

        // kubectl's KIND/NAME form, several objects and kinds at once, as get -o name prints them.
        var named = await Netctl.RunAsync(silo, "wait", "endpoint/shop/web-1", "svc/shop/web", "--for=programmed", "--timeout", "30s");
        Assert.True(named.ExitCode == 0, named.ToString());
        Assert.Equal(["endpoint/shop/web-1 programmed", "service/shop/web programmed"], named.OutputLines.Select(l => l[..l.IndexOf(" (", StringComparison.Ordinal)]));
        // A timeout longer than a wait lasts, set for every command in the environment (or the
        // config file), is cut to 300 s for a wait, not refused as a usage error.
        var configured = await Netctl.RunAsync(["--server", silo.Address, "wait", "ep", "shop/web-1", "--for=programmed"],
            environment: new Dictionary<string, string> { ["NETCTL_TIMEOUT"] = "10m" });
        Assert.True(configured.ExitCode == 0, configured.ToString());
        Assert.Equal(2, (await Netctl.RunAsync(silo, "wait", "ep/shop/web-1", "node/node-1", "--for=programmed")).ExitCode);
        Assert.Equal(2, (await Netctl.RunAsync(silo, "wait", "ep", "--for=programmed")).ExitCode);

        Assert.Equal(2, (await Netctl.RunAsync(silo, "wait", "ep", "shop/web-1", "--for=ready")).ExitCode);
        var node = await Netctl.RunAsync(silo, "wait", "node", "node-1", "--for=programmed");
        Assert.Equal(2, node.ExitCode);
        Assert.Contains("--for=programmed does not apply to Node objects", node.Errors.Single());
        var missing = await Netctl.RunAsync(silo, "wait", "svc", "shop/nope", "--for=programmed");
        Assert.Equal(1, missing.ExitCode);
        var future = await Netctl.RunAsync(silo, "wait", "ep", "shop/web-1", "--for=programmed", "--etag", "999999");
        Assert.Equal(1, future.ExitCode);
        Assert.Contains("etag", future.Errors.Single());
    }

    [Fact]
    public async Task Describe_Service_ShowsSpecStatusEndpointSetAndEvents()
    {
        await using var silo = await Silo.StartAsync();
        Assert.Equal(0, (await Netctl.RunAsync(silo, "apply", "-f", RepositoryPaths.Examples)).ExitCode);
        await WaitForEndpointSetAsync(silo, "shop", "web", 2);

        var result = await Netctl.RunAsync(silo, "describe", "svc", "web", "-n", "shop");

        Assert.True(result.ExitCode == 0, result.ToString());
        var text = result.Output;
        Assert.Contains("Name:         web\n", text);
        Assert.Contains("Namespace:    shop\n", text);
        Assert.Contains("ip_family_policy: PreferDualStack", text);
        Assert.Contains("Status:\n  cluster_ips:\n", text);
        Assert.Contains("Endpoints:    2 ready of 2", text);
        Assert.Matches(@"\n  web-1 +node-1 +10\.10\.\S+ +True +http:8080/TCP\n", text);
        Assert.Contains("Events (derived from the current status; the control plane keeps no event history):\n  <none>", text);

        // A service whose selector matches nothing has no ready endpoint: a derived warning.
        var lonely = new Service { Metadata = new ObjectMeta { Namespace = "shop", Name = "lonely" }, Spec = new ServiceSpec { Network = "blue", Selector = { ["app"] = "none" } } };
        await silo.Client.Services.CreateAsync(lonely);
        await WaitForEndpointSetAsync(silo, "shop", "lonely", 0);
        var warning = await Netctl.RunAsync(silo, "describe", "service", "shop/lonely");
        Assert.Contains("Endpoints:    0 ready of 0", warning.Output);
        Assert.Matches(@"Warning +NoReadyEndpoints +the selector matches no endpoint", warning.Output);

        // A service selecting more endpoints than its set can hold (each targeted port repeats
        // per endpoint): the set keeps what fits, and describe says how many are left out.
        var big = new Service { Metadata = new ObjectMeta { Namespace = "shop", Name = "big" }, Spec = new ServiceSpec { Network = "blue", Selector = { ["app"] = "big" } } };
        for (var i = 0; i < 250; i++) big.Spec.Ports.Add(new ServicePort { Name = $"p-{i:000}", Port = (uint)(1000 + i), TargetPortName = $"t-{i:000}" });
        foreach (var chunk in Enumerable.Range(0, 450).Chunk(32))
        {
            await Task.WhenAll(chunk.Select(n =>
            {
                var endpoint = new Endpoint { Metadata = new ObjectMeta { Namespace = "shop", Name = $"big-{n:000}", Labels = { ["app"] = "big" } }, Spec = new EndpointSpec { Network = "blue", Node = "node-1", Ready = true } };
                for (var i = 0; i < 250; i++) endpoint.Spec.Ports.Add(new NamedPort { Name = $"t-{i:000}", Port = (uint)(2000 + i) });
                return silo.Client.Endpoints.CreateAsync(endpoint);
            }));
        }
        await silo.Client.Services.CreateAsync(big);
        await WaitForEndpointSetAsync(silo, "shop", "big", set => set.Omitted > 0);
        var set = await silo.Client.GetServiceEndpointsAsync("shop", "big");
        var capped = await Netctl.RunAsync(silo, "describe", "service", "shop/big");
        Assert.Contains($"Endpoints:    {set.Endpoints.Count} ready of {set.Endpoints.Count}", capped.Output);
        Assert.Matches($@"Warning +EndpointsOmitted +{set.Omitted} more selected endpoints are left out of the set", capped.Output);
    }

    [Fact]
    public async Task Delete_ByNameAndByManifest_RemovesObjectsInDependencyOrder()
    {
        await using var silo = await Silo.StartAsync();
        Assert.Equal(0, (await Netctl.RunAsync(silo, "apply", "-f", RepositoryPaths.Examples)).ExitCode);

        var one = await Netctl.RunAsync(silo, "delete", "endpoint", "shop/client");
        Assert.True(one.ExitCode == 0, one.ToString());
        Assert.Equal(["endpoint/shop/client deleted"], one.OutputLines);
        Assert.DoesNotContain((await silo.Client.Endpoints.ListAsync(new ListRequest { Namespace = "shop" })).Endpoints, e => e.Metadata.Name == "client");

        var again = await Netctl.RunAsync(silo, "delete", "endpoint", "shop/client");
        Assert.Equal(1, again.ExitCode);
        Assert.Contains("NOT_FOUND", Assert.Single(again.Errors));
        Assert.Equal(0, (await Netctl.RunAsync(silo, "delete", "endpoint", "shop/client", "--ignore-not-found")).ExitCode);

        var stale = await Netctl.RunAsync(silo, "delete", "ns", "shop", "--etag", "999999");
        Assert.Equal(1, stale.ExitCode);
        Assert.Contains("ABORTED", Assert.Single(stale.Errors));

        var all = await Netctl.RunAsync(silo, "delete", "-f", RepositoryPaths.Examples, "--ignore-not-found");
        Assert.True(all.ExitCode == 0, all.ToString());
        var lines = all.OutputLines.ToList();
        Assert.Equal(8, lines.Count);
        // Endpoints, services and policies go before the nodes and the network, the namespace last.
        Assert.True(lines.IndexOf("network/blue deleted") > lines.FindLastIndex(l => l.StartsWith("endpoint/", StringComparison.Ordinal)), all.ToString());
        Assert.True(lines.IndexOf("node/node-1 deleted") > lines.IndexOf("endpoint/shop/web-1 deleted"), all.ToString());
        Assert.Equal("namespace/shop deleted", lines[^1]);
        Assert.Empty((await silo.Client.Namespaces.ListAsync(new ListRequest())).Namespaces);
        Assert.Empty((await silo.Client.Networks.ListAsync(new ListRequest())).Networks);
        Assert.Empty((await silo.Client.Nodes.ListAsync(new ListRequest())).Nodes);
    }

    [Fact]
    public async Task Explain_ExamplePolicy_AllowsTheClientAndDeniesOthers()
    {
        await using var silo = await Silo.StartAsync();
        Assert.Equal(0, (await Netctl.RunAsync(silo, "apply", "-f", RepositoryPaths.Examples)).ExitCode);

        var allowed = await Netctl.RunAsync(silo, "explain", "shop/client", "shop/web-1", "--port", "8080/TCP");
        Assert.True(allowed.ExitCode == 0, allowed.ToString());
        Assert.StartsWith("ALLOWED: shop/client -> shop/web-1 8080/TCP", allowed.Output);
        Assert.Contains("ingress: allowed by shop/web-from-client rule 0", allowed.Output);

        var denied = await Netctl.RunAsync(silo, "-n", "shop", "explain", "web-2", "web-1", "--port", "8080");
        Assert.True(denied.ExitCode == 0, denied.ToString());
        Assert.StartsWith("DENIED: shop/web-2 -> shop/web-1 8080/TCP", denied.Output);

        var web1 = await silo.Client.Endpoints.GetAsync("shop", "web-1");
        var outside = await Netctl.RunAsync(silo, "explain", "fd00:99::1", $"shop/web-1@{web1.Status.Ips[1]}", "--port", "8080/tcp", "-o", "json");
        var answer = JsonNode.Parse(outside.Output)!;
        Assert.False((bool?)answer["allowed"] ?? false);
        Assert.True((bool?)answer["ingress"]!["isolated"]);

        // A bare address stands for its endpoint: web-1's own address shows its ingress isolation in text too.
        var byAddress = await Netctl.RunAsync(silo, "explain", "fd00:99::1", web1.Status.Ips[1], "--port", "8080/tcp");
        Assert.True(byAddress.ExitCode == 0, byAddress.ToString());
        Assert.StartsWith("DENIED:", byAddress.Output);
        Assert.Contains("ingress: denied: no rule of the selecting policies matches (selected by shop/web-from-client)", byAddress.Output);
        Assert.Contains("egress:  allowed (fd00:99::1 is no endpoint's address: no policy applies to it)", byAddress.Output);

        // Both sides by address: each stands for its endpoint, and both lines name it as the reason does.
        var client = await silo.Client.Endpoints.GetAsync("shop", "client");
        var byAddresses = await Netctl.RunAsync(silo, "explain", client.Status.Ips[0], web1.Status.Ips[0], "--port", "8080/TCP");
        Assert.True(byAddresses.ExitCode == 0, byAddresses.ToString());
        Assert.Contains($"from shop/client ({client.Status.Ips[0]}) to shop/web-1 ({web1.Status.Ips[0]})", byAddresses.Output);
        Assert.Contains($"egress:  allowed (no policy selects shop/client ({client.Status.Ips[0]}) in this direction)\n", byAddresses.Output);
        Assert.Contains("ingress: allowed by shop/web-from-client rule 0", byAddresses.Output);
        Assert.DoesNotContain("no endpoint's address", byAddresses.Output);
        var verdict = JsonNode.Parse((await Netctl.RunAsync(silo, "explain", client.Status.Ips[0], web1.Status.Ips[0], "--port", "8080/TCP", "-o", "json")).Output)!;
        Assert.Equal(("shop/client", "shop/web-1"), ((string?)verdict["egress"]!["endpoint"], (string?)verdict["ingress"]!["endpoint"]));

        var wrongPort = await Netctl.RunAsync(silo, "explain", "shop/client", "shop/web-1", "--port", "http");
        Assert.Equal(2, wrongPort.ExitCode);
    }

    [Fact]
    public async Task NodeStatus_ExampleNodes_ShowsReadinessAndLease()
    {
        await using var silo = await Silo.StartAsync();
        Assert.Equal(0, (await Netctl.RunAsync(silo, "apply", "-f", RepositoryPaths.Example("03-nodes.yaml"))).ExitCode);

        var table = await Netctl.RunAsync(silo, "node", "status");
        Assert.True(table.ExitCode == 0, table.ToString());
        Assert.Equal(["NAME", "READY", "LAST-CHANGE", "FOR", "UNDERLAY", "PROGRAMMED", "REPORTED", "POLICY-ISSUES"], table.OutputLines[0].Split(' ', StringSplitOptions.RemoveEmptyEntries));
        Assert.Matches(@"^node-1 +True +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ +\d+s +192\.168\.50\.11 +unreported +never +0$", table.OutputLines[1]);

        // A report (what an agent sends once its kernel has everything up to a position) shows.
        await silo.Client.ReportProgrammedAsync("node-1", (await silo.Client.Nodes.ListAsync(new ListRequest())).ResumeToken);
        // The report is one-way: poll the tracker until it has it (it has no stream to wait on).
        for (var clock = System.Diagnostics.Stopwatch.StartNew(); (await silo.Client.ConvergenceStatusAsync()).Nodes.Single(n => n.Name == "node-1").SecondsSinceReport < 0;)
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), "the report never arrived");
            await Task.Delay(20);
        }
        var reported = await Netctl.RunAsync(silo, "node", "status", "node-1");
        Assert.Matches(@"^node-1 +True .* +(counted|catching-up) +\d+s ago +0$", reported.OutputLines[1]);

        var issue = new AgentStatus { PolicyIssues = { new PolicyIssue { Endpoint = "shop/web-1", Direction = "Ingress", Policies = { "shop/web-from-client" }, Reason = "entry limit" } } };
        await silo.Client.HeartbeatAsync("node-2", status: issue);
        var json = await Netctl.RunAsync(silo, "node", "status", "node-2", "-o", "json");
        var node = JsonNode.Parse(json.Output)![0]!;
        Assert.True((bool?)node["ready"]);
        Assert.Equal("shop/web-1", (string?)node["policy_issues"]![0]!["endpoint"]);
        var withIssue = await Netctl.RunAsync(silo, "node", "status");
        Assert.Matches(@"node-2 +shop/web-1 +Ingress +shop/web-from-client +entry limit", withIssue.Output);
    }

    [Fact]
    public async Task NodeHeartbeat_MakesANodeWhoseLeaseExpiredReadyAgain()
    {
        await using var silo = await Silo.StartAsync(settings: "--ControlPlane:NodeLeaseDuration=00:00:02");
        Assert.Equal(0, (await Netctl.RunAsync(silo, "apply", "-f", RepositoryPaths.Example("03-nodes.yaml"))).ExitCode);
        await WaitForNodeAsync(silo, "node-1", ready: false);

        var renewed = await Netctl.RunAsync(silo, "node", "heartbeat", "node-1", "node-2");
        Assert.True(renewed.ExitCode == 0, renewed.ToString());
        Assert.Equal(["node/node-1 renewed: ready True, lease 2s", "node/node-2 renewed: ready True, lease 2s"], renewed.OutputLines);
        Assert.True((await silo.Client.Nodes.GetAsync("", "node-1")).Status.Ready);

        var unknown = await Netctl.RunAsync(silo, "node", "heartbeat", "node-9");
        Assert.Equal(1, unknown.ExitCode);
        Assert.Contains("node-9", unknown.Error);
        Assert.Equal(2, (await Netctl.RunAsync(silo, "node", "heartbeat")).ExitCode);
    }

    /// <summary>Waits, on a watch, until the node's readiness is <paramref name="ready"/>.</summary>
    private static async Task WaitForNodeAsync(Silo silo, string name, bool ready)
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await foreach (var e in silo.Client.WatchAsync(new WatchRequest { Kinds = { Kind.Node } }, cancellationToken: cancel.Token))
        {
            if (e.Node is { } node && node.Metadata.Name == name && e.Type != EventType.Deleted && node.Status.Ready == ready) return;
        }
    }

    /// <summary>Waits, on a watch (no polling), until the service's endpoint set has <paramref name="count"/> ready endpoints.</summary>
    private static Task WaitForEndpointSetAsync(Silo silo, string ns, string name, int count) =>
        WaitForEndpointSetAsync(silo, ns, name, set => set.Endpoints.Count(x => x.Ready) == count);

    private static async Task WaitForEndpointSetAsync(Silo silo, string ns, string name, Func<ServiceEndpoints, bool> wanted)
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await foreach (var e in silo.Client.WatchAsync(new WatchRequest { Kinds = { Kind.ServiceEndpoints }, Namespace = ns }, cancellationToken: cancel.Token))
        {
            if (e.ServiceEndpoints is { } set && set.Metadata.Name == name && e.Type != EventType.Deleted && wanted(set)) return;
        }
    }
}
