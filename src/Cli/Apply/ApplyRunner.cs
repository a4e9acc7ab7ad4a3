using ControlPlane.Cli.Connection;
using ControlPlane.Cli.Resources;
using Google.Protobuf;
using Grpc.Core;

namespace ControlPlane.Cli.Apply;

/// <summary>
/// The writing half of apply: creates and updates in dependency order (namespaces, networks, nodes
/// and cluster peers, then endpoints, services and policies, then service exports), each tier's
/// objects concurrently. An update carries the etag the plan read (or the manifest's own), so a
/// change made in between fails ABORTED and is reported instead of being overwritten. After a tier
/// with a failure, later tiers are not applied.
/// </summary>
internal sealed class ApplyRunner(ServerSet servers, int concurrency)
{
    /// <summary>
    /// <see cref="Unknown"/>: the write failed UNAVAILABLE after it was sent (its silo died, its
    /// connection was reset): it may have been made.
    /// </summary>
    public enum Outcome { Created, Configured, Unchanged, Failed, Unknown, Skipped }

    public sealed record Result(PlannedChange Change, Outcome Outcome, string? Error);

    /// <summary>Called after each document (for progress and per-object lines).</summary>
    public Action<Result>? Done { get; init; }

    /// <summary>Called after each tier with its results in document order.</summary>
    public Action<IReadOnlyList<Result>>? TierDone { get; init; }

    public async Task<IReadOnlyList<Result>> RunAsync(IReadOnlyList<PlannedChange> plan, CancellationToken cancellationToken)
    {
        var results = new List<Result>();
        var failed = false;
        foreach (var tier in plan.GroupBy(c => c.Document.Kind.Tier).OrderBy(g => g.Key))
        {
            if (failed)
            {
                foreach (var change in tier)
                {
                    var skipped = new Result(change, Outcome.Skipped, "not applied: an earlier document failed");
                    results.Add(skipped);
                    Done?.Invoke(skipped);
                }
                continue;
            }
            var outcomes = await Bounded.MapAsync(tier.ToList(), concurrency, async (change, token) =>
            {
                var result = await WriteAsync(change, token);
                Done?.Invoke(result);
                return result;
            }, cancellationToken);
            results.AddRange(outcomes);
            TierDone?.Invoke(outcomes);
            failed = outcomes.Any(r => r.Outcome is Outcome.Failed or Outcome.Unknown);
        }
        return results;
    }

    private static Google.Protobuf.IMessage Copy(Google.Protobuf.IMessage message)
    {
        var copy = (Google.Protobuf.IMessage)Activator.CreateInstance(message.Descriptor.ClrType)!;
        copy.MergeFrom(message.ToByteString());
        return copy;
    }

    private async Task<Result> WriteAsync(PlannedChange change, CancellationToken cancellationToken)
    {
        var kind = change.Document.Kind;
        var message = Copy(change.Document.Message);
        try
        {
            if (change.IsCreate)
            {
                await servers.CallAsync((c, o) => kind.Create!(c, message, o), cancellationToken);
                return new Result(change, Outcome.Created, null);
            }
            // Nothing of the manifest's would change: no write. A conditional write would be refused
            // when the server changed the object's status meanwhile (an export's conditions follow
            // its service, which an earlier tier may just have updated), for nothing.
            if (!change.WouldChange) return new Result(change, Outcome.Unchanged, null);
            ResourceKind.MetaOf(message).Etag = change.Etag;
            var updated = await servers.CallAsync((c, o) => kind.Update!(c, message, o), cancellationToken);
            // The server skips a write that changes nothing, and then the etag stays.
            var unchanged = ResourceKind.MetaOf(updated).Etag == ResourceKind.MetaOf(change.Existing!).Etag;
            return new Result(change, unchanged ? Outcome.Unchanged : Outcome.Configured, null);
        }
        catch (RpcException e)
        {
            var why = e.StatusCode switch
            {
                StatusCode.Aborted => $"{StatusNames.Describe(e)} (it changed after netctl read it at etag {change.Etag}; run apply again to apply over the new version)",
                _ => StatusNames.Describe(e),
            };
            return new Result(change, Outcome.Failed, why);
        }
        catch (SiloUnavailableException e) when (e.MayHaveArrived)
        {
            return new Result(change, Outcome.Unknown, $"{e.Message}: this write may have been made (read the object back, or apply again)");
        }
        catch (CliException e)
        {
            return new Result(change, Outcome.Failed, e.Message);
        }
    }
}
