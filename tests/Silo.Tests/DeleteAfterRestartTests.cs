using ControlPlane.Contracts.V1;
using static ControlPlane.Silo.Tests.Fixtures;

namespace ControlPlane.Silo.Tests;

/// <summary>
/// An object read back from the store after a restart, then deleted without being written first:
/// its delete carries the object's namespace and network like any change, so a watch filtered by
/// them gets the DELETED event, and the service endpoints controller drops the endpoint.
/// </summary>
public sealed class DeleteAfterRestartTests : IDisposable
{
    private readonly string _data = Path.Combine(Path.GetTempPath(), "cp-delrestart-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_data)) Directory.Delete(_data, recursive: true);
    }

    [Fact]
    public async Task Deletes_of_objects_loaded_after_a_restart_reach_filtered_watches_and_the_endpoint_sets()
    {
        var silo = await SiloProcess.StartAsync(_data);
        try
        {
            await SeedAsync(silo.Client);
            await silo.Client.Services.CreateAsync(Service("ns", "web", "net", ("app", "web")));
            for (var i = 0; i < 3; i++) await silo.Client.Endpoints.CreateAsync(Endpoint("ns", $"e{i}", "net", "node-a", true, ("app", "web")));
            await silo.TerminateAsync();
            await silo.DisposeAsync();
            silo = await SiloProcess.StartAsync(_data);
            var client = silo.Client;

            using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            var request = new WatchRequest { Kinds = { Kind.Endpoint, Kind.Service, Kind.ServiceEndpoints }, Namespace = "ns", Network = "net" };
            await using var events = client.WatchAsync(request, cancellationToken: cancel.Token).GetAsyncEnumerator(cancel.Token);
            var endpointSet = new List<string>();
            var deleted = new HashSet<string>();
            async Task UntilAsync(Func<bool> done)
            {
                while (!done())
                {
                    Assert.True(await events.MoveNextAsync());
                    var e = events.Current;
                    if (e.ServiceEndpoints is { } set) endpointSet = e.Type == EventType.Deleted ? [] : [.. set.Endpoints.Select(a => a.Name).Order()];
                    if (e.Type == EventType.Deleted) deleted.Add($"{e.ObjectCase}/{(e.Endpoint?.Metadata ?? e.Service?.Metadata ?? e.ServiceEndpoints.Metadata).Name}");
                }
            }

            await UntilAsync(() => endpointSet.Count == 3);
            await client.Endpoints.DeleteAsync("ns", "e1");
            await UntilAsync(() => deleted.Contains("Endpoint/e1"));
            await UntilAsync(() => endpointSet.SequenceEqual(["e0", "e2"]));
            Assert.Equal(["e0", "e2"], (await client.GetServiceEndpointsAsync("ns", "web")).Endpoints.Select(a => a.Name).Order());

            await client.Services.DeleteAsync("ns", "web");
            await UntilAsync(() => deleted.Contains("Service/web") && deleted.Contains("ServiceEndpoints/web"));
        }
        finally
        {
            await silo.DisposeAsync();
        }
    }
}
