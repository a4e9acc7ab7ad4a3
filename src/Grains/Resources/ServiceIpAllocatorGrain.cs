using System.Net;
using ControlPlane.Grains.Ipam;
using ControlPlane.Grains.State;
using ControlPlane.Grains.Validation;
using ControlPlane.Storage.Errors;
using Orleans.Placement;

namespace ControlPlane.Grains.Resources;

/// <summary>
/// The service VIP allocator: one bitmap per configured range. Each held address names the
/// service holding it, rebuilt from the store's claims on activation, and a release by anyone
/// else is ignored. Placed on the silo that first calls it (it is on every ClusterIP create).
/// </summary>
[GrainType(Kinds.ServiceIpAllocator)]
[PreferLocalPlacement]
internal sealed class ServiceIpAllocatorGrain(ObjectServices services) : Grain, IServiceIpAllocatorGrain
{
    /// <summary>The key of the one allocator of a cluster.</summary>
    public const string Cluster = "cluster";

    private const string Owner = "services";

    private const string ImportPrefix = "ServiceImport ";

    /// <summary>How the allocator names a ServiceImport holding an address (a service is named by its key alone).</summary>
    public static string ImportHolder(string key) => ImportPrefix + key;

    /// <summary>A holder as an error message names it.</summary>
    private static string Describe(string? holder) =>
        holder?.StartsWith(ImportPrefix, StringComparison.Ordinal) == true ? holder : "Service " + holder;

    private List<BlockPool>? _pools;

    public async Task<string[]> AllocateAsync(string holder, string[] families, string[] requested, int first)
    {
        var taken = new List<IPAddress>();
        var pools = await PoolsAsync();
        try
        {
            for (var i = first; i < families.Length; i++)
            {
                var pool = pools.FirstOrDefault(p => ServiceFamilies.NameOf(p.Family) == families[i])
                    ?? throw ControlPlaneException.Invalid($"spec.ip_families[{i}]", $"{families[i]} has no service range");
                taken.Add(i < requested.Length ? Take(pool, IPAddress.Parse(requested[i]), $"spec.cluster_ips[{i}]", holder)
                    : pool.TryAllocate(Owner, holder) ?? throw new ControlPlaneException(ErrorCode.ResourceExhausted,
                        $"the {families[i]} service range {pool.Network} is exhausted", "status.cluster_ips"));
            }
        }
        catch
        {
            taken.ForEach(a => pools.ForEach(p => p.Release(a, holder)));
            throw;
        }
        return [.. taken.Select(a => a.ToString())];
    }

    private static IPAddress Take(BlockPool pool, IPAddress address, string field, string holder)
    {
        var result = pool.TryTake(address, Owner, holder);
        return result.Outcome switch
        {
            RequestOutcome.Taken => address,
            RequestOutcome.Held => throw new ControlPlaneException(ErrorCode.AlreadyExists,
                $"{address} is held by {Describe(result.Who)}", field),
            RequestOutcome.Reserved => throw ControlPlaneException.Invalid(field, $"{address} is reserved in the service range {pool.Network} (its network, first or broadcast address)"),
            _ => throw ControlPlaneException.Invalid(field, $"{address} is outside the service range {pool.Network}"),
        };
    }

    public Task ReleaseAsync(string holder, string[] addresses)
    {
        BlockPool.Release(_pools, holder, addresses);
        return Task.CompletedTask;
    }

    public Task ResyncAsync()
    {
        _pools = null;
        return Task.CompletedTask;
    }

    private async ValueTask<List<BlockPool>> PoolsAsync()
    {
        if (_pools is not null)
        {
            return _pools;
        }
        var pools = new List<BlockPool>();
        var options = services.Options;
        foreach (var (cidr, setting) in new[] { (options.ServiceIpv4Cidr, nameof(options.ServiceIpv4Cidr)), (options.ServiceIpv6Cidr, nameof(options.ServiceIpv6Cidr)) })
        {
            if (cidr.Length == 0)
            {
                continue;
            }
            var prefix = AddressInput.ParsePrefix(setting, cidr);
            // One block spanning the whole range: the allocator is a single bitmap.
            var pool = new BlockPool(prefix, prefix.Length);
            pool.AssignBlock(prefix, Owner);
            pools.Add(pool);
        }
        foreach (var held in await services.Store.ListClaimsAsync(Claims.ServiceIpScope))
        {
            var address = Claims.AddressOf(held.Claim);
            var holder = held.Kind == Kinds.ServiceImport ? ImportHolder(held.Key) : held.Key;
            pools.FirstOrDefault(p => p.MarkHeld(address, holder));
        }
        return _pools = pools;
    }
}
