using Grpc.Core;
using ControlPlane.Contracts.V1;
using static ControlPlane.Silo.Tests.Fixtures;

namespace ControlPlane.Silo.Tests;

/// <summary>
/// A resume token names revisions of one store's history. The same store after a restart takes
/// it back; a store created in its place (a wiped data directory at the same address) refuses it
/// with OUT_OF_RANGE, so the watcher lists again instead of silently missing what the new store holds.
/// </summary>
public sealed class StoreIdentityTests : IDisposable
{
    private readonly string _data = Path.Combine(Path.GetTempPath(), "cp-storeid-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_data)) Directory.Delete(_data, recursive: true);
    }

    [Fact]
    public async Task ResumeAndPageTokens_AreTakenBackAfterARestart_AndRefusedByAReplacedStore()
    {
        var silo = await SiloProcess.StartAsync(_data);
        try
        {
            await silo.Client.Namespaces.CreateAsync(Namespace("before"));
            await silo.Client.Namespaces.CreateAsync(Namespace("before-2"));
            var token = await PositionAsync(silo.Client);
            var firstPage = await silo.Client.Namespaces.ListAsync(new ListRequest { PageSize = 1 });
            Assert.NotEmpty(firstPage.NextPageToken);

            await silo.TerminateAsync();
            await silo.DisposeAsync();
            silo = await SiloProcess.StartAsync(_data);
            await silo.Client.Namespaces.CreateAsync(Namespace("after-restart"));
            await using (var resumed = new WatchCollector(silo.Client, new WatchRequest { ResumeToken = token }))
            {
                var first = await resumed.WaitForAsync(e => e.Type != EventType.Bookmark, "the change after the token");
                Assert.Equal("after-restart", first.Namespace.Metadata.Name);
            }
            var secondPage = await silo.Client.Namespaces.ListAsync(new ListRequest { PageSize = 1, PageToken = firstPage.NextPageToken });
            Assert.Single(secondPage.Namespaces);
            Assert.Equal(firstPage.ResumeToken, secondPage.ResumeToken);

            // The data directory is wiped: a new store, whose revisions reach past the token's.
            await silo.TerminateAsync();
            await silo.DisposeAsync();
            Directory.Delete(_data, recursive: true);
            silo = await SiloProcess.StartAsync(_data);
            for (var i = 0; i < 40; i++) await silo.Client.Namespaces.CreateAsync(Namespace($"new-{i}"));

            var error = await Assert.ThrowsAsync<RpcException>(async () =>
            {
                await foreach (var _ in silo.Client.WatchAsync(new WatchRequest { ResumeToken = token })) { }
            });
            Assert.Equal(StatusCode.OutOfRange, error.StatusCode);
            Assert.Contains("another store", error.Status.Detail);

            // A page token continues only the listing that issued it: not one over another store's data.
            var paging = await Assert.ThrowsAsync<RpcException>(() => silo.Client.Namespaces.ListAsync(new ListRequest { PageSize = 3, PageToken = firstPage.NextPageToken }));
            Assert.Equal(StatusCode.OutOfRange, paging.StatusCode);
            Assert.StartsWith("page_token was issued by another store", paging.Status.Detail);
        }
        finally
        {
            await silo.DisposeAsync();
        }
    }
}
