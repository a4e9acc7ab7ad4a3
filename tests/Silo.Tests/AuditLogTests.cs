using System.Text.Json;
using ControlPlane.Contracts.V1;
using Grpc.Core;
using static ControlPlane.Silo.Tests.Fixtures;

namespace ControlPlane.Silo.Tests;

/// <summary>The audit log of a real silo process: every write, who made it, what it touched, the revision.</summary>
public sealed class AuditLogTests : IDisposable
{
    private readonly string _data = Path.Combine(Path.GetTempPath(), "cp-audit-" + Guid.NewGuid().ToString("N"));

    [Fact]
    public async Task Writes_AreAuditedBeforeTheAnswer_SurvivingSigkill()
    {
        Network created, updated;
        await using (var silo = await SiloProcess.StartAsync(_data))
        {
            await silo.Client.Namespaces.CreateAsync(Namespace("ns"));
            created = await silo.Client.Networks.CreateAsync(Network("net", 100, "10.30.0.0/16"));
            created.Metadata.Labels["team"] = "a";
            updated = await silo.Client.Networks.UpdateAsync(created);
            await silo.Client.Networks.GetAsync("", "net");
            await silo.Client.GetClusterInfoAsync();
            var invalid = await Assert.ThrowsAsync<RpcException>(() => silo.Client.Networks.CreateAsync(Network("bad", 101, "not-a-cidr")));
            Assert.Equal(StatusCode.InvalidArgument, invalid.StatusCode);
            await silo.Client.Namespaces.DeleteAsync("", "ns");
            // Acknowledged: the process dies before any shutdown code could flush anything.
            silo.Kill();
        }

        var lines = Lines();
        Assert.Equal(5, lines.Count); // the Get and the ClusterSet's GetInfo are reads and are not audited
        var create = lines[1];
        Assert.Equal("Create", create.GetProperty("method").GetString());
        Assert.Equal("Network", create.GetProperty("kind").GetString());
        Assert.Equal("net", create.GetProperty("name").GetString());
        Assert.Equal("OK", create.GetProperty("outcome").GetString());
        Assert.Equal(created.Metadata.Etag, create.GetProperty("revision").GetString());
        Assert.Equal("127.0.0.1", create.GetProperty("caller").GetString());
        Assert.Equal("admin", create.GetProperty("role").GetString());
        Assert.False(create.GetProperty("authenticated").GetBoolean());
        Assert.StartsWith("ipv4:127.0.0.1:", create.GetProperty("peer").GetString());
        Assert.True(DateTimeOffset.TryParse(create.GetProperty("time").GetString(), out var time) && time.Offset == TimeSpan.Zero);

        Assert.Equal(("Update", updated.Metadata.Etag), (lines[2].GetProperty("method").GetString(), lines[2].GetProperty("revision").GetString()));
        var rejected = lines[3];
        Assert.Equal(("Create", "bad", "INVALID_ARGUMENT"), (rejected.GetProperty("method").GetString(), rejected.GetProperty("name").GetString(), rejected.GetProperty("outcome").GetString()));
        Assert.False(string.IsNullOrEmpty(rejected.GetProperty("error").GetString()));
        Assert.False(rejected.TryGetProperty("revision", out _));
        var delete = lines[4];
        Assert.Equal(("Delete", "Namespace", "ns", "OK"), (delete.GetProperty("method").GetString(), delete.GetProperty("kind").GetString(),
            delete.GetProperty("name").GetString(), delete.GetProperty("outcome").GetString()));

        // A restarted silo appends after what is there.
        await using (var silo = await SiloProcess.StartAsync(_data))
        {
            await silo.Client.HeartbeatAsync("no-such-node").ContinueWith(_ => { });
            await silo.Client.ClusterPeers.DeleteAsync("", "no-such-peer").ContinueWith(_ => { });
            await silo.Client.ServiceExports.DeleteAsync("shop", "no-such-export").ContinueWith(_ => { });
            await silo.TerminateAsync();
        }
        lines = Lines();
        Assert.Equal(8, lines.Count);
        Assert.Equal(("Heartbeat", "Node", "no-such-node", "NOT_FOUND"), (lines[5].GetProperty("method").GetString(), lines[5].GetProperty("kind").GetString(),
            lines[5].GetProperty("name").GetString(), lines[5].GetProperty("outcome").GetString()));
        // Every kind is named in the singular, as the objects are.
        Assert.Equal(["ClusterPeer", "ServiceExport"], lines.Skip(6).Select(l => l.GetProperty("kind").GetString()));
    }

    /// <summary>
    /// An audit log on a full file system (a 256 KiB tmpfs, filled): the write is made but answered
    /// INTERNAL, and the silo says NOT_SERVING. Once there is room again it serves again by itself
    /// (no write needed to notice), and the log's next line marks the gap.
    /// </summary>
    [Fact]
    public async Task AFullAuditLog_MakesTheSiloNotServing_UntilItTakesLinesAgain_AndTheGapIsMarked()
    {
        var mount = Path.Combine(_data, "audit-fs");
        Directory.CreateDirectory(mount);
        Shell.Must("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", mount);
        try
        {
            var path = Path.Combine(mount, "audit.jsonl");
            await using var silo = await SiloProcess.StartAsync(Path.Combine(_data, "store"), $"--Audit:Path={path}");
            var health = new Grpc.Health.V1.Health.HealthClient(silo.Client.Invoker);
            async Task<Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus> StatusAsync() =>
                (await health.CheckAsync(new Grpc.Health.V1.HealthCheckRequest())).Status;
            await silo.Client.Namespaces.CreateAsync(Namespace("before"));
            Assert.Equal(Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.Serving, await StatusAsync());

            var filler = Path.Combine(mount, "filler");
            try
            {
                using var fill = File.OpenWrite(filler);
                var block = new byte[4096];
                while (true) fill.Write(block);
            }
            catch (IOException)
            {
                // ENOSPC: the file system is full.
            }
            // The log's last page still has room for a few lines; the first that needs a new one fails.
            var audited = 0;
            RpcException? refused = null;
            while (refused is null && audited < 100)
            {
                try
                {
                    await silo.Client.Namespaces.CreateAsync(Namespace($"during-{audited}"));
                    audited++;
                }
                catch (RpcException e)
                {
                    refused = e;
                }
            }
            Assert.NotNull(refused);
            Assert.Equal(StatusCode.Internal, refused.StatusCode);
            Assert.Equal($"during-{audited}", (await silo.Client.Namespaces.GetAsync("", $"during-{audited}")).Metadata.Name); // made, not audited
            Assert.Equal(Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.NotServing, await StatusAsync());

            File.Delete(filler);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            while (await StatusAsync() != Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.Serving)
            {
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), "still NOT_SERVING 10 s after the file system had room");
                await Task.Delay(100);
            }
            await silo.Client.Namespaces.CreateAsync(Namespace("after"));

            // The line that filled the file system was cut short and cut off again: every line is whole.
            var text = File.ReadAllLines(path);
            Assert.All(text, l => Assert.EndsWith("}", l));
            var lines = text.Select(line => JsonDocument.Parse(line).RootElement).ToList();
            Assert.Equal(["before", .. Enumerable.Range(0, audited).Select(i => $"during-{i}"), null, "after"],
                lines.Select(l => l.TryGetProperty("name", out var name) ? name.GetString() : null));
            var gap = lines[^2];
            Assert.Equal("gap", gap.GetProperty("event").GetString());
            Assert.Contains("errno 28", gap.GetProperty("error").GetString());
            Assert.True(gap.GetProperty("since").GetDateTimeOffset() <= gap.GetProperty("time").GetDateTimeOffset());
            await silo.TerminateAsync();
        }
        finally
        {
            Shell.Run("umount", "-l", mount);
        }
    }

    [Fact]
    public async Task Audit_Disabled_WritesNoFile()
    {
        await using (var silo = await SiloProcess.StartAsync(_data, "--Audit:Enabled=false"))
        {
            await silo.Client.Namespaces.CreateAsync(Namespace("ns"));
            await silo.TerminateAsync();
        }
        Assert.False(File.Exists(Path.Combine(_data, "audit.jsonl")));
    }

    /// <summary>
    /// Writers on many threads while the log rotates: every line is whole and in exactly one file,
    /// no file outgrows the limit by more than the lines in flight, and only MaxFiles old files stay.
    /// </summary>
    [Theory]
    [InlineData(10_000)]
    [InlineData(3)]
    public async Task Rotation_UnderConcurrentWriters_LosesAndTearsNoLine(int maxFiles)
    {
        const int threads = 8, perThread = 250, maxBytes = 4096;
        var path = Path.Combine(_data, "audit.jsonl");
        using (var log = new ControlPlane.Silo.Security.AuditLog(path, maxBytes, maxFiles))
        {
            var caller = new ControlPlane.Silo.Security.Caller("writer", ControlPlane.Silo.Security.Role.Admin, Authenticated: false);
            await Task.WhenAll(Enumerable.Range(0, threads).Select(t => Task.Run(() =>
            {
                for (var i = 0; i < perThread; i++)
                {
                    log.Append(new ControlPlane.Silo.Security.AuditEntry(DateTimeOffset.UtcNow, caller, "peer", "Create", "Namespace", null,
                        $"t{t}-{i}", StatusCode.OK, "1", null));
                }
            })));
        }
        var files = ControlPlane.Contracts.Hosting.RotatedFiles.OldestFirst(path).ToList();
        var names = files.SelectMany(File.ReadAllLines).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("name").GetString()).ToList();
        Assert.Equal(names.Count, names.Distinct().Count());
        var lineBytes = File.ReadLines(path).Concat(File.ReadLines(files[0])).Max(l => l.Length + 1);
        Assert.All(files, f => Assert.True(new FileInfo(f).Length <= maxBytes + threads * lineBytes, $"{f}: {new FileInfo(f).Length} bytes"));
        if (maxFiles == 10_000)
        {
            Assert.Equal(threads * perThread, names.Count);
            // Each writer's own lines stay in its order across the files.
            for (var t = 0; t < threads; t++)
            {
                Assert.Equal(Enumerable.Range(0, perThread).Select(i => $"t{t}-{i}"), names.Where(n => n!.StartsWith($"t{t}-", StringComparison.Ordinal)));
            }
        }
        else
        {
            Assert.Equal(maxFiles + 1, files.Count);
            Assert.Equal(Enumerable.Range(1, maxFiles).Reverse().Select(k => $"{path}.{k}"), files.Take(maxFiles));
        }
    }

    private List<JsonElement> Lines() =>
        [.. File.ReadAllLines(Path.Combine(_data, "audit.jsonl")).Select(line => JsonDocument.Parse(line).RootElement)];

    public void Dispose()
    {
        if (Directory.Exists(_data)) Directory.Delete(_data, recursive: true);
    }
}
