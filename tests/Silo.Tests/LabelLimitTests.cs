using ControlPlane.Contracts.V1;
using Grpc.Core;
using static ControlPlane.Silo.Tests.Fixtures;

namespace ControlPlane.Silo.Tests;

/// <summary>Labels within Kubernetes' limits, the bound on an object's size, bounded error messages, and a namespace's <c>kubernetes.io/metadata.name</c>.</summary>
public sealed class LabelLimitTests
{
    private const string NameLabel = "kubernetes.io/metadata.name";

    private static async Task<RpcException> Fails(Func<Task> call, string field)
    {
        var error = await Assert.ThrowsAsync<RpcException>(call);
        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.StartsWith(field + ":", error.Status.Detail);
        // Bounded whatever was sent (the API's own cut is at 1,024 characters).
        Assert.True(error.Status.Detail.Length < 300, $"the message is {error.Status.Detail.Length} characters");
        return error;
    }

    private static void Label(ObjectMeta meta, int count, int valueLength)
    {
        for (var i = 0; i < count; i++) meta.Labels[$"k{i}"] = new string('v', valueLength);
    }

    [Fact]
    public async Task HundredThousandLabels_OnANamespaceOrEndpoint_AreRefused_AndChangeNothing()
    {
        await using var silo = await SiloInstance.StartAsync();
        await SeedAsync(silo.Client);
        var before = await PositionAsync(silo.Client);

        var ns = Namespace("crowded");
        Label(ns.Metadata, 100_000, 6);
        await Fails(() => silo.Client.Namespaces.CreateAsync(ns), "metadata.labels");
        var endpoint = Endpoint("ns", "crowded", "net", "node-a");
        Label(endpoint.Metadata, 100_000, 6);
        await Fails(() => silo.Client.Endpoints.CreateAsync(endpoint), "metadata.labels");
        var existing = await silo.Client.Namespaces.GetAsync("", "ns");
        Label(existing.Metadata, 5_000, 63);
        await Fails(() => silo.Client.Namespaces.UpdateAsync(existing), "metadata.labels");
        // One label whose key or value is huge: refused, and the message does not echo it whole.
        var huge = Namespace("huge");
        huge.Metadata.Labels[new string('k', 70_000)] = "v";
        await Fails(() => silo.Client.Namespaces.CreateAsync(huge), "metadata.labels");
        huge.Metadata.Labels.Clear();
        huge.Metadata.Labels["example.com/" + new string('k', 70_000)] = "v";
        await Fails(() => silo.Client.Namespaces.CreateAsync(huge), "metadata.labels");
        Assert.Equal(before, await PositionAsync(silo.Client));

        // Just within the limit (256 KiB of keys and values) is accepted.
        var full = Endpoint("ns", "full", "net", "node-a");
        Label(full.Metadata, 3_000, 63);
        Assert.Equal(3_000, (await silo.Client.Endpoints.CreateAsync(full)).Metadata.Labels.Count);
    }

    private static void Ports(Endpoint endpoint, int count, string prefix = "p")
    {
        for (var i = 0; i < count; i++) endpoint.Spec.Ports.Add(new NamedPort { Name = $"{prefix}{i}", Port = (uint)(1 + i % 65_535) });
    }

    /// <summary>
    /// An object over 1 MiB (here 100,000 ports, in a request well under the 4 MiB message limit)
    /// is refused naming its largest part: stored, it would reach stock clients' 4 MiB receive limit
    /// in every List and Watch of its kind.
    /// </summary>
    [Fact]
    public async Task AnObjectOverOneMebibyte_IsRefusedNamingItsLargestPart_AndChangesNothing()
    {
        await using var silo = await SiloInstance.StartAsync();
        await SeedAsync(silo.Client);
        var before = await PositionAsync(silo.Client);

        var crowded = Endpoint("ns", "crowded", "net", "node-a");
        Ports(crowded, 100_000);
        var error = await Fails(() => silo.Client.Endpoints.CreateAsync(crowded), "spec.ports");
        Assert.Contains("at most 1048576 bytes", error.Status.Detail);

        // Within the bound it is accepted; an update that crosses it is refused the same way.
        var wide = Endpoint("ns", "wide", "net", "node-a");
        Ports(wide, 50_000);
        var created = await silo.Client.Endpoints.CreateAsync(wide);
        var after = await PositionAsync(silo.Client);
        Ports(created, 50_000, "q");
        await Fails(() => silo.Client.Endpoints.UpdateAsync(created), "spec.ports");
        Assert.Equal(after, await PositionAsync(silo.Client));
        Assert.NotEqual(before, after);
    }

    [Fact]
    public async Task NamespaceNameLabel_IsSetByTheServer_AndAnotherValueIsRefused()
    {
        await using var silo = await SiloInstance.StartAsync();
        var created = await silo.Client.Namespaces.CreateAsync(Namespace("shop"));
        Assert.Equal("shop", created.Metadata.Labels[NameLabel]);
        var before = await PositionAsync(silo.Client);

        var impostor = Namespace("web");
        impostor.Metadata.Labels[NameLabel] = "shop";
        await Fails(() => silo.Client.Namespaces.CreateAsync(impostor), $"metadata.labels[{NameLabel}]");
        var renamed = created.Clone();
        renamed.Metadata.Labels[NameLabel] = "other";
        await Fails(() => silo.Client.Namespaces.UpdateAsync(renamed), $"metadata.labels[{NameLabel}]");
        // An update that leaves the label out changes nothing: the server sets it again.
        var without = created.Clone();
        without.Metadata.Labels.Remove(NameLabel);
        Assert.Equal(created.Metadata.Etag, (await silo.Client.Namespaces.UpdateAsync(without)).Metadata.Etag);
        Assert.Equal(before, await PositionAsync(silo.Client));

        // The right value, given or not, is the same namespace.
        var given = Namespace("web");
        given.Metadata.Labels[NameLabel] = "web";
        given.Metadata.Labels["team"] = "a";
        var web = await silo.Client.Namespaces.CreateAsync(given);
        Assert.Equal(new Dictionary<string, string> { [NameLabel] = "web", ["team"] = "a" }, web.Metadata.Labels);
        // A label named like it on another kind is an ordinary label.
        await silo.Client.Nodes.CreateAsync(Node("node-a"));
        var node = Node("node-b", "10.255.0.2");
        node.Metadata.Labels[NameLabel] = "anything";
        Assert.Equal("anything", (await silo.Client.Nodes.CreateAsync(node)).Metadata.Labels[NameLabel]);
    }
}
