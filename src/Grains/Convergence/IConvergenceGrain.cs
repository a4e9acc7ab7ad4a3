using ControlPlane.Contracts.V1;

using Orleans.Concurrency;

namespace ControlPlane.Grains.Convergence;

/// <summary>
/// What the node agents have programmed, for the whole cluster (one activation, key
/// <see cref="Key"/>). Held in memory only: positions are about this moment, and every agent
/// repeats its position every few seconds, so a new activation (after its silo died) knows them
/// all again after a short warm-up, during which a ready node that has not reported yet counts
/// as missing rather than as caught up.
/// </summary>
[Alias("controlplane.IConvergenceGrain")]
public interface IConvergenceGrain : IGrainWithStringKey
{
    public const string Key = "cluster";

    /// <summary>
    /// A node's agent has programmed every change up to <paramref name="position"/> (revision per
    /// partition). Awaited, so that the agent hears NOT_FOUND for a node that is not registered and
    /// OUT_OF_RANGE for a position this store never reached.
    /// </summary>
    [Alias("Report")]
    Task ReportAsync(string node, long[] position);

    /// <summary>A node's readiness changed (its grain committed it); the store is read again for it.</summary>
    [Alias("NodeChanged"), OneWay]
    Task NodeChangedAsync(string node);

    /// <summary>
    /// The revision per partition up to which every counted node has programmed everything, once
    /// its version differs from <paramref name="version"/> or <paramref name="wait"/> has passed.
    /// </summary>
    [Alias("Watch"), AlwaysInterleave]
    Task<ProgrammedView> WatchAsync(long version, TimeSpan wait);

    /// <summary>How many counted nodes have programmed <paramref name="revision"/> of partition <paramref name="partition"/>.</summary>
    [Alias("Coverage"), AlwaysInterleave]
    Task<ProgrammedStatus> CoverageAsync(int partition, long revision);

    /// <summary>Every node's convergence.</summary>
    [Alias("Status"), AlwaysInterleave]
    Task<ConvergenceStatusResponse> StatusAsync();
}

/// <summary>The programmed-everywhere position at one version of the grain's state.</summary>
[GenerateSerializer, Alias("controlplane.ProgrammedView")]
public sealed record ProgrammedView([property: Id(0)] long Version, [property: Id(1)] long[] Everywhere);
