using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.V1;
using Grpc.Core;
using static ControlPlane.Silo.Tests.Fixtures;

namespace ControlPlane.Silo.Tests;

/// <summary>
/// Convergence/WaitProgrammed over the API with a simulated agent (it reports the position a
/// List hands out, as an agent reports its watch's): precise errors for bad input, the node named
/// while it has not programmed a change, and after a SIGKILL of the silo no claim that a change
/// is programmed until the node has reported to the new process.
/// </summary>
public sealed class ConvergenceApiTests : IDisposable
{
    private readonly string _data = Path.Combine(Path.GetTempPath(), "cp-conv-" + Guid.NewGuid().ToString("N"));

    [Fact]
    public async Task Bad_requests_name_the_field_and_change_nothing()
    {
        await using var silo = await SiloInstance.StartAsync();
        var client = silo.Client;
        async Task<RpcException> Refused(WaitProgrammedRequest request) =>
            await Assert.ThrowsAsync<RpcException>(() => client.WaitProgrammedAsync(request));

        var node = await Refused(new WaitProgrammedRequest { Kind = Kind.Node, Name = "n" });
        Assert.Equal(StatusCode.InvalidArgument, node.StatusCode);
        Assert.StartsWith("kind:", node.Status.Detail);
        var unnamed = await Refused(new WaitProgrammedRequest { Kind = Kind.Endpoint, Namespace = "ns" });
        Assert.Equal(StatusCode.InvalidArgument, unnamed.StatusCode);
        Assert.StartsWith("name:", unnamed.Status.Detail);
        var longWait = await Refused(new WaitProgrammedRequest { Kind = Kind.Network, Name = "net", TimeoutSeconds = 301 });
        Assert.Equal(StatusCode.InvalidArgument, longWait.StatusCode);
        Assert.StartsWith("timeout_seconds:", longWait.Status.Detail);
        var missing = await Refused(new WaitProgrammedRequest { Kind = Kind.Network, Name = "nope" });
        Assert.Equal(StatusCode.NotFound, missing.StatusCode);
        Assert.True(Calls.IsClassified(missing));

        await client.Networks.CreateAsync(Network("net", 7, "10.7.0.0/16"));
        var etag = await Refused(new WaitProgrammedRequest { Kind = Kind.Network, Name = "net", Etag = "seven" });
        Assert.Equal(StatusCode.InvalidArgument, etag.StatusCode);
        Assert.StartsWith("etag:", etag.Status.Detail);
        var future = await Refused(new WaitProgrammedRequest { Kind = Kind.Network, Name = "net", Etag = "999999" });
        Assert.Equal(StatusCode.InvalidArgument, future.StatusCode);

        var position = await Assert.ThrowsAsync<RpcException>(() => client.ReportProgrammedAsync("node-x", "not a token"));
        Assert.Equal(StatusCode.InvalidArgument, position.StatusCode);
        Assert.StartsWith("position:", position.Status.Detail);
        var none = await Assert.ThrowsAsync<RpcException>(() => client.ReportProgrammedAsync("node-x", ""));
        Assert.Equal(StatusCode.InvalidArgument, none.StatusCode);
        Assert.StartsWith("position: is required", none.Status.Detail);
        var current = (await client.Networks.ListAsync(new ListRequest { PageSize = 1 })).ResumeToken;
        var badName = await Assert.ThrowsAsync<RpcException>(() => client.ReportProgrammedAsync("Bad_Name", current));
        Assert.Equal(StatusCode.InvalidArgument, badName.StatusCode);
        Assert.StartsWith("name:", badName.Status.Detail);
        var unregistered = await Assert.ThrowsAsync<RpcException>(() => client.ReportProgrammedAsync("node-x", current));
        Assert.Equal(StatusCode.NotFound, unregistered.StatusCode);
        Assert.Contains("node 'node-x' not found", unregistered.Status.Detail);
        // A position this store never reached (an agent's, from before a restore) would make
        // changes look programmed that no node has: OUT_OF_RANGE, as a watch from it is.
        await client.Nodes.CreateAsync(Node("node-y"));
        var (storeId, partitions) = (silo.Store.Partitions.StoreId, silo.Store.Partitions.Count);
        var revisions = ControlPlane.Silo.Api.ResumeToken.Decode((await client.Networks.ListAsync(new ListRequest { PageSize = 1 })).ResumeToken, storeId, partitions);
        var ahead = ControlPlane.Silo.Api.ResumeToken.Encode(storeId, [.. revisions.Select(r => r + 10_000)]);
        var aheadRefused = await Assert.ThrowsAsync<RpcException>(() => client.ReportProgrammedAsync("node-y", ahead));
        Assert.Equal(StatusCode.OutOfRange, aheadRefused.StatusCode);
        Assert.Contains("is ahead of the store", aheadRefused.Status.Detail);
        await client.Nodes.DeleteAsync("", "node-y");
        // No node, nothing to wait for: programmed on 0 of 0.
        var done = await client.WaitProgrammedAsync(new WaitProgrammedRequest { Kind = Kind.Network, Name = "net", TimeoutSeconds = 5 });
        Assert.Equal((0u, 0u), (done.Programmed.ProgrammedNodes, done.Programmed.ReadyNodes));
    }

    [Fact]
    public async Task A_change_is_programmed_only_once_the_node_reported_it_and_a_restart_forgets_nothing_it_should_not()
    {
        string etag;
        await using (var silo = await SiloProcess.StartAsync(_data))
        {
            var client = silo.Client;
            await client.Namespaces.CreateAsync(Namespace("ns"));
            await client.Nodes.CreateAsync(Node("sim"));
            // What an agent does first: a heartbeat with its status, then a report once programmed.
            await client.HeartbeatAsync("sim", status: new AgentStatus());
            await client.Networks.CreateAsync(Network("net", 9, "10.9.0.0/16"));
            await ReportAsync(client);
            etag = (await client.Endpoints.CreateAsync(Endpoint("ns", "e", "net", "sim"))).Metadata.Etag;

            var late = await MissingAsync(client, etag);
            Assert.Contains("programmed on 0 of 1 counted nodes", late.Status.Detail);
            // A caller whose own deadline is too near to wait at all still learns who is missing,
            // and the message says no time was waited (not a negative time).
            // (The client's own deadline may pass first on a busy machine: then the call is asked again.)
            RpcException hurried;
            var attempts = 0;
            do
            {
                hurried = await Assert.ThrowsAsync<RpcException>(() => client.WaitProgrammedAsync(
                    new WaitProgrammedRequest { Kind = Kind.Endpoint, Namespace = "ns", Name = "e", Etag = etag, TimeoutSeconds = 10 }, Calls.Within(TimeSpan.FromMilliseconds(80))));
            }
            while (!Calls.IsClassified(hurried) && ++attempts < 5);
            Assert.Equal(StatusCode.DeadlineExceeded, hurried.StatusCode);
            Assert.True(Calls.IsClassified(hurried), hurried.ToString());
            Assert.Contains("programmed on 0 of 1 counted nodes after 0 s; missing: sim", hurried.Status.Detail);

            await ReportAsync(client);
            var done = await WaitAsync(client, etag, 10);
            Assert.Equal((1u, 1u, etag), (done.ProgrammedNodes, done.ReadyNodes, done.Etag));
            var status = (await client.Endpoints.GetAsync("ns", "e")).Status.Programmed;
            Assert.Equal((1u, 1u), (status.ProgrammedNodes, status.ReadyNodes));
            Assert.Empty(status.Missing);
            silo.Kill();
        }
        await using (var restarted = await SiloProcess.StartAsync(_data))
        {
            var client = restarted.Client;
            await client.HeartbeatAsync("sim");
            // The new process has heard nothing from sim: the endpoint is not programmed anywhere it knows of.
            await MissingAsync(client, etag);
            Assert.Equal(["sim"], (await client.Endpoints.GetAsync("ns", "e")).Status.Programmed.Missing);
            await ReportAsync(client);
            var done = await WaitAsync(client, etag, 10);
            Assert.Equal((1u, 1u), (done.ProgrammedNodes, done.ReadyNodes));
        }
    }

    /// <summary>
    /// A node made by hand (no agent ever sent a heartbeat for it) has nothing to wait for: right
    /// after it is created on a fresh silo it is catching up, not missing, and a wait completes at
    /// once with 0 of 0. Once an agent speaks for it and reports, it counts.
    /// </summary>
    [Fact]
    public async Task A_node_no_agent_spoke_for_is_catching_up_from_the_start()
    {
        await using var silo = await SiloInstance.StartAsync();
        var client = silo.Client;
        await SeedAsync(client);
        var status = (await client.Networks.GetAsync("", "net")).Status.Programmed;
        Assert.Equal(["sim"], status.CatchingUp);
        Assert.Empty(status.Missing);
        var etag = (await client.Endpoints.CreateAsync(Endpoint("ns", "e", "net", "sim"))).Metadata.Etag;
        var done = await WaitAsync(client, etag, 5);
        Assert.Equal((0u, 0u), (done.ProgrammedNodes, done.ReadyNodes));

        await client.HeartbeatAsync("sim", status: new AgentStatus());
        Assert.NotNull((await client.Nodes.GetAsync("", "sim")).Status.Agent);
        await ReportAsync(client);
        // The report is one-way and the tracker has no stream: poll it until sim counts.
        for (var clock = System.Diagnostics.Stopwatch.StartNew(); !(await client.ConvergenceStatusAsync()).Nodes.Single(n => n.Name == "sim").Counted;)
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), "sim never counted");
            await Task.Delay(20);
        }
        var counted = await WaitAsync(client, etag, 10);
        Assert.Equal((1u, 1u), (counted.ProgrammedNodes, counted.ReadyNodes));
    }

    /// <summary>
    /// status.programmed is computed for each Get and never stored: after a Get, a change of the
    /// object commits no programmed status, so List and the watch event carry none, and the next
    /// Get computes it for the new revision.
    /// </summary>
    [Fact]
    public async Task Programmed_status_of_a_Get_is_never_stored()
    {
        await using var silo = await SiloInstance.StartAsync();
        var client = silo.Client;
        await SeedAsync(client);
        await client.Endpoints.CreateAsync(Endpoint("ns", "e", "net", "sim"));
        var got = await client.Endpoints.GetAsync("ns", "e");
        Assert.NotNull(got.Status.Programmed);
        Assert.NotNull((await client.Networks.GetAsync("", "net")).Status.Programmed);

        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await using var events = client.WatchAsync(new WatchRequest { Kinds = { Kind.Endpoint }, ResumeToken = await PositionAsync(client) },
            cancellationToken: cancel.Token).GetAsyncEnumerator(cancel.Token);
        got.Metadata.Labels["changed"] = "yes";
        var updated = await client.Endpoints.UpdateAsync(got);
        Assert.Null(updated.Status.Programmed);
        Assert.True(await events.MoveNextAsync());
        Assert.Equal((EventType.Modified, "yes"), (events.Current.Type, events.Current.Endpoint.Metadata.Labels["changed"]));
        Assert.Null(events.Current.Endpoint.Status.Programmed);
        Assert.Null((await client.Endpoints.ListAsync(new ListRequest { Namespace = "ns" })).Endpoints.Single().Status.Programmed);
        var network = await client.Networks.GetAsync("", "net");
        network.Spec.Mtu = 1400;
        await client.Networks.UpdateAsync(network);
        Assert.Null((await client.Networks.ListAsync(new ListRequest())).Networks.Single().Status.Programmed);
        Assert.Equal(updated.Metadata.Etag, (await client.Endpoints.GetAsync("ns", "e")).Status.Programmed.Etag);
    }

    /// <summary>
    /// A watch with programmed_events: the endpoint's ADDED comes at once, its PROGRAMMED (metadata
    /// and etag only, no token) only after the node reported a position past it; a namespace, which
    /// no node programs, gets none.
    /// </summary>
    [Fact]
    public async Task Programmed_events_follow_the_nodes_reports()
    {
        await using var silo = await SiloInstance.StartAsync();
        var client = silo.Client;
        await SeedAsync(client);
        await ReportAsync(client);
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await using var events = client.WatchAsync(new WatchRequest { Kinds = { Kind.Endpoint, Kind.Namespace }, ProgrammedEvents = true, ResumeToken = await PositionAsync(client) },
            cancellationToken: cancel.Token).GetAsyncEnumerator(cancel.Token);
        async Task<WatchEvent> NextAsync()
        {
            Assert.True(await events.MoveNextAsync());
            return events.Current;
        }

        var endpoint = await client.Endpoints.CreateAsync(Endpoint("ns", "e", "net", "sim"));
        await client.Namespaces.CreateAsync(Namespace("other"));
        var added = await NextAsync();
        Assert.Equal((EventType.Added, "e"), (added.Type, added.Endpoint?.Metadata.Name));
        Assert.Equal((EventType.Added, "other"), ((await NextAsync()).Type, events.Current.Namespace?.Metadata.Name));

        await ReportAsync(client);
        var programmed = await NextAsync();
        Assert.Equal(EventType.Programmed, programmed.Type);
        Assert.Equal(("ns", "e", endpoint.Metadata.Etag), (programmed.Endpoint.Metadata.Namespace, programmed.Endpoint.Metadata.Name, programmed.Endpoint.Metadata.Etag));
        Assert.Null(programmed.Endpoint.Spec);
        Assert.Empty(programmed.ResumeToken);
    }

    /// <summary>
    /// The convergence metrics on /metrics (Prometheus text, over HTTP/1.1 on the health port):
    /// a node's commit → programmed latency once its position moved past a change, and the
    /// changes still waiting.
    /// </summary>
    [Fact]
    public async Task Commit_to_programmed_latency_is_a_metric_per_node()
    {
        var port = Ports.Free();
        await using var silo = await SiloInstance.StartAsync($"--Silo:HealthPort={port}");
        var client = silo.Client;
        await client.Nodes.CreateAsync(Node("sim"));
        await ReportAsync(client);
        await client.Namespaces.CreateAsync(Namespace("ns"));
        await ReportAsync(client);

        using var http = new HttpClient();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        string text;
        // The report is one-way and the exporter reads on scrape: scrape until the sample is in.
        var count = new System.Text.RegularExpressions.Regex(@"(?m)^controlplane_convergence_programmed_latency_seconds_count\{[^}]*node=""sim""[^}]*\} (\d+)");
        while (!count.IsMatch(text = await http.GetStringAsync($"http://127.0.0.1:{port}/metrics")))
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), text);
            await Task.Delay(100);
        }
        Assert.Equal("1", count.Match(text).Groups[1].Value);
        // In seconds, with buckets from a millisecond up (Prometheus' base unit, as the other durations).
        Assert.Matches(@"(?m)^controlplane_convergence_programmed_latency_seconds_bucket\{[^}]*le=""0.001""[^}]*\} \d+", text);
        var sum = double.Parse(new System.Text.RegularExpressions.Regex(@"(?m)^controlplane_convergence_programmed_latency_seconds_sum\{[^}]*node=""sim""[^}]*\} (\S+)").Match(text).Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(sum, 0, 20);
        Assert.Contains("controlplane_convergence_changes_waiting", text);
    }

    /// <summary>Namespace ns, node sim (made by hand: no agent has spoken for it yet) and network net.</summary>
    private static async Task SeedAsync(ControlPlaneClient client)
    {
        await client.Namespaces.CreateAsync(Namespace("ns"));
        await client.Nodes.CreateAsync(Node("sim"));
        await client.Networks.CreateAsync(Network("net", 9, "10.9.0.0/16"));
    }

    /// <summary>A WaitProgrammed that must time out naming "sim".</summary>
    private static async Task<RpcException> MissingAsync(ControlPlaneClient client, string etag)
    {
        var late = await Assert.ThrowsAsync<RpcException>(() => WaitAsync(client, etag, 1));
        Assert.Equal(StatusCode.DeadlineExceeded, late.StatusCode);
        Assert.True(Calls.IsClassified(late));
        Assert.EndsWith("missing: sim", late.Status.Detail);
        return late;
    }

    /// <summary>What an agent does once its kernel has everything up to now: report the position.</summary>
    private static async Task ReportAsync(ControlPlaneClient client) =>
        await client.ReportProgrammedAsync("sim", (await client.Endpoints.ListAsync(new ListRequest { PageSize = 1 })).ResumeToken);

    private static async Task<ProgrammedStatus> WaitAsync(ControlPlaneClient client, string etag, uint seconds) =>
        (await client.WaitProgrammedAsync(new WaitProgrammedRequest { Kind = Kind.Endpoint, Namespace = "ns", Name = "e", Etag = etag, TimeoutSeconds = seconds })).Programmed;

    public void Dispose()
    {
        if (Directory.Exists(_data)) Directory.Delete(_data, recursive: true);
    }
}
