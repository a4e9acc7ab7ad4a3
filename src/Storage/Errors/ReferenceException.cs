namespace ControlPlane.Storage.Errors;

/// <summary>
/// The store refused a write that would break a reference between objects: a create whose
/// referenced object (<see cref="WriteRequest.Requires"/>) does not exist at its commit
/// (<see cref="Missing"/>), or a delete of an object others still refer to (their reference
/// claims, <see cref="Claim.Reference"/>). <see cref="Kind"/> and <see cref="Key"/> name the
/// missing object or one referrer. The writing grain words it for the caller.
/// </summary>
[GenerateSerializer]
[Alias("controlplane.ReferenceException")]
public sealed class ReferenceException : Exception
{
    public ReferenceException(bool missing, string kind, string key)
        : base(missing ? $"{kind} '{key}' does not exist" : $"{kind} '{key}' still refers to it")
    {
        (Missing, Kind, Key) = (missing, kind, key);
    }

    [Id(0)]
    public bool Missing { get; init; }

    [Id(1)]
    public string Kind { get; init; }

    [Id(2)]
    public string Key { get; init; }
}
