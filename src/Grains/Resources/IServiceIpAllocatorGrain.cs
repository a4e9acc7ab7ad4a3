namespace ControlPlane.Grains.Resources;

/// <summary>
/// Hands out service virtual IPs from the configured service CIDR(s), one activation for the
/// cluster (key "cluster"). What is held is rebuilt from the store's claims on activation; an
/// address becomes durable with the service's commit, which the store refuses if another
/// service holds it.
/// </summary>
[Alias("controlplane.IServiceIpAllocatorGrain")]
public interface IServiceIpAllocatorGrain : IGrainWithStringKey
{
    /// <summary>
    /// One address per family ("IPv4", "IPv6") from position <paramref name="first"/> on (the
    /// earlier ones are held already) for <paramref name="holder"/>: the requested one at the
    /// same position if given (INVALID_ARGUMENT outside the range, ALREADY_EXISTS when held), else
    /// a free one (RESOURCE_EXHAUSTED when none is left).
    /// </summary>
    [Alias("Allocate")]
    Task<string[]> AllocateAsync(string holder, string[] families, string[] requested, int first);

    /// <summary>Gives back addresses, but only those <paramref name="holder"/> still holds here.</summary>
    [Alias("Release")]
    Task ReleaseAsync(string holder, string[] addresses);

    /// <summary>Rebuilds what is held from the store.</summary>
    [Alias("Resync")]
    Task ResyncAsync();
}
