using System.Diagnostics;
using ControlPlane.Storage;
using ControlPlane.Storage.Sqlite;

namespace ControlPlane.Bench;

/// <summary>
/// What the embedded store's commit costs per created endpoint, without gRPC or grains: batches
/// of 64 creates (as the group committer takes them under load) of an endpoint-sized object,
/// written three ways: the object alone; with its address claim; with the claim and its reference
/// to its node (what an endpoint create commits). Reports process CPU and wall time per write, so
/// the share of a create that is the store's can be told from the rest.
/// </summary>
internal static class StoreCommits
{
    private const int BatchSize = 64;

    public static void Run(string directory, int batches)
    {
        Console.WriteLine();
        Console.WriteLine($"## Store commit per endpoint create (SQLite, batches of {BatchSize}, {batches} batches after {batches / 5} warm-up)");
        Console.WriteLine("| writes | CPU µs per write | wall µs per write |");
        Console.WriteLine("|---|---|---|");
        foreach (var (name, claim, reference) in new[] { ("object and change record", false, false), ("+ address claim", true, false), ("+ address claim + node reference", true, true) })
        {
            var path = Path.Combine(directory, $"store-{Guid.NewGuid():N}");
            var (cpu, wall) = Measure(path, batches, claim, reference);
            Console.WriteLine($"| {name} | {cpu:F1} | {wall:F1} |");
            Directory.Delete(path, recursive: true);
        }
    }

    private static (double Cpu, double Wall) Measure(string directory, int batches, bool claim, bool reference)
    {
        using var store = new SqliteGrainStore(Path.Combine(directory, "store.db"));
        var partitions = store.Open("bench", 16);
        var data = new byte[350];
        Random.Shared.NextBytes(data);
        var outcomes = new WriteOutcome[BatchSize];
        var changes = new Change?[BatchSize];
        store.Commit([new WriteRequest { Kind = "node", Key = "node-1", Partition = 0, ExpectedRevision = 0, Data = data, Epoch = partitions.Epochs[0] }], outcomes, changes);
        var round = 0;
        uint address = 0x0A000000;
        void Batch()
        {
            var batch = new List<WriteRequest>(BatchSize);
            for (var caller = 0; caller < BatchSize; caller++)
            {
                // Keys as 64 callers make them: each caller's next key lands beside its last.
                var key = $"bench/run-{caller}-{round}";
                var partition = (int)((uint)key.GetHashCode() % 16);
                var claims = new List<Claim>();
                if (claim)
                {
                    var value = new byte[16];
                    (value[10], value[11]) = (0xFF, 0xFF);
                    System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(value.AsSpan(12), ++address);
                    claims.Add(Claim.Of("address/net", value));
                }
                if (reference) claims.Add(Claim.Reference("node", "node-1", "endpoint", key));
                batch.Add(new WriteRequest
                {
                    Kind = "endpoint", Key = key, Partition = partition, ExpectedRevision = 0, Data = data, Namespace = "bench", Index = "net",
                    Claims = claims.Count > 0 ? claims : null, Requires = reference ? [("node", "node-1")] : null, Epoch = partitions.Epochs[partition],
                });
            }
            round++;
            store.Commit(batch, outcomes, changes);
            if (Array.IndexOf(outcomes, WriteOutcome.Committed) < 0) throw new InvalidOperationException("nothing committed");
        }
        for (var i = 0; i < batches / 5; i++) Batch();
        var process = Process.GetCurrentProcess();
        var cpu = process.TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < batches; i++) Batch();
        process.Refresh();
        var writes = (double)batches * BatchSize;
        return ((process.TotalProcessorTime - cpu).TotalMicroseconds / writes, clock.Elapsed.TotalMicroseconds / writes);
    }
}
