namespace ControlPlane.Storage.Errors;

/// <summary>
/// The store refused a write because another object holds one of its claims. The writing grain
/// decides what it means: a stale allocator (try again) or a request for something taken
/// (ALREADY_EXISTS naming the holder, or FAILED_PRECONDITION for an overlapping range).
/// </summary>
[GenerateSerializer]
[Alias("controlplane.ClaimTakenException")]
public sealed class ClaimTakenException : Exception
{
    public ClaimTakenException(ClaimHolder holder)
        : base($"{holder.Claim.Describe()} is held by {holder.Kind} {holder.Key}")
    {
        Holder = holder;
    }

    [Id(0)]
    public ClaimHolder Holder { get; init; }
}
