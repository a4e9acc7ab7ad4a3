using ControlPlane.Contracts.V1;
using Grpc.Core;
using Microsoft.Data.Sqlite;
using static ControlPlane.Silo.Tests.Fixtures;

namespace ControlPlane.Silo.Tests;

/// <summary>
/// A change is answered as what it is, a committed change, even when what follows its commit
/// fails: an error would tell the caller that nothing was done (UNAVAILABLE says so), and its
/// retry would find the object gone. Here the network that gets a deleted endpoint's address
/// back cannot be activated, as when its silo has just been killed.
/// </summary>
public sealed class AfterCommitTests : IDisposable
{
    private readonly string _data = Path.Combine(Path.GetTempPath(), "cp-aftercommit-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_data)) Directory.Delete(_data, recursive: true);
    }

    [Fact]
    public async Task ADeleteThatCommitted_AnswersOk_WhenGivingTheAddressBackFails()
    {
        await using (var silo = await SiloInstance.StartInAsync(_data, ownsDirectory: false))
        {
            await SeedAsync(silo.Client);
            await silo.Client.Endpoints.CreateAsync(Endpoint("ns", "pod-1", "net", "node-a"));
        }
        // The network's stored state no longer parses, so its grain cannot activate.
        await using (var db = new SqliteConnection($"Data Source={Path.Combine(_data, "controlplane.db")};Pooling=False"))
        {
            await db.OpenAsync();
            await using var command = db.CreateCommand();
            command.CommandText = "UPDATE objects SET data = x'ffffffff' WHERE kind = 'Network' AND key = 'net'";
            Assert.Equal(1, await command.ExecuteNonQueryAsync());
        }
        await using (var silo = await SiloInstance.StartInAsync(_data, ownsDirectory: false))
        {
            await silo.Client.Endpoints.DeleteAsync("ns", "pod-1");

            var gone = await Assert.ThrowsAsync<RpcException>(() => silo.Client.Endpoints.GetAsync("ns", "pod-1"));
            Assert.Equal(StatusCode.NotFound, gone.StatusCode);
            // The fault was real: the network's grain still cannot answer.
            Assert.NotEqual(StatusCode.OK, (await Assert.ThrowsAsync<RpcException>(() => silo.Client.Networks.GetAsync("", "net"))).StatusCode);
        }
    }
}
