using System.Net;
using ControlPlane.Contracts.V1;
using ControlPlane.Grains.State;
using ControlPlane.Grains.Validation;
using ControlPlane.Storage.Errors;

namespace ControlPlane.Grains.Resources;

/// <summary>
/// A ServiceImport. Its ClusterSetIPs come from this cluster's service ranges through the same
/// allocator as services' virtual IPs and are claimed in the same scope, so an import and a
/// service never share one; they are kept for the life of the import.
/// </summary>
[GrainType(Kinds.ServiceImport)]
internal sealed class ServiceImportGrain(ObjectServices services) : ResourceGrain<ServiceImport>(services), IServiceImportGrain
{
    private const int ClaimAttempts = 3;

    // The addresses of this import before it was withdrawn (a lost peer that returns): asked for
    // again, so that the name keeps its address while this activation lives.
    private string[] _withdrawn = [];

    protected override bool Namespaced => true;

    protected override ObjectMeta MetaOf(ServiceImport resource) => resource.Metadata ??= new ObjectMeta();

    protected override void Validate(ServiceImport resource)
    {
    }

    protected override ServiceImport Merge(ServiceImport current, ServiceImport requested) => requested;

    private string Holder => ServiceIpAllocatorGrain.ImportHolder(Key);

    private IServiceIpAllocatorGrain Allocator => GrainFactory.Get<IServiceIpAllocatorGrain>(ServiceIpAllocatorGrain.Cluster);

    public async Task PutAsync(ServiceImport import)
    {
        for (var attempt = 1; ; attempt++)
        {
            var wanted = import.Clone();
            var meta = wanted.Metadata;
            (meta.Uid, meta.CreateTime) = State is null
                ? (Guid.NewGuid().ToString(), Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(Time.GetUtcNow()))
                : (State.Metadata.Uid, State.Metadata.CreateTime);
            meta.Etag = State?.Metadata.Etag ?? string.Empty;
            var held = State?.Spec.Ips.ToList() ?? [];
            var families = wanted.Spec.Type == ServiceImportType.ClusterSetIp ? wanted.Spec.IpFamilies.ToList() : [];
            var kept = held.Where(ip => families.Contains(ServiceFamilies.NameOf(IPAddress.Parse(ip).AddressFamily))).ToList();
            var missing = families.Where(f => !kept.Any(ip => ServiceFamilies.NameOf(IPAddress.Parse(ip).AddressFamily) == f)).ToArray();
            var added = missing.Length == 0 ? [] : await AllocateAsync(missing);
            var ips = kept.Concat(added)
                .OrderBy(ip => families.IndexOf(ServiceFamilies.NameOf(IPAddress.Parse(ip).AddressFamily))).ToList();
            wanted.Spec.Ips.Clear();
            wanted.Spec.Ips.Add(ips);
            if (State is not null && wanted.Equals(State))
            {
                return;
            }
            try
            {
                await WriteAsync(wanted, [.. ips.Select(ip => Claims.ServiceIp(IPAddress.Parse(ip)))]);
            }
            catch (Exception e)
            {
                if (added.Length > 0) await Allocator.ReleaseAsync(Holder, added);
                if (e is not ClaimTakenException || attempt == ClaimAttempts) throw;
                await Allocator.ResyncAsync();
                continue;
            }
            var dropped = held.Except(ips).ToArray();
            if (dropped.Length > 0) await Allocator.ReleaseAsync(Holder, dropped);
            return;
        }
    }

    /// <summary>One address per family: the one this import had before it was withdrawn when still free, else any.</summary>
    private async Task<string[]> AllocateAsync(string[] families)
    {
        var earlier = families.Select(f => _withdrawn.FirstOrDefault(ip => ServiceFamilies.NameOf(IPAddress.Parse(ip).AddressFamily) == f)).ToArray();
        if (earlier.All(ip => ip is not null))
        {
            try
            {
                return await Allocator.AllocateAsync(Holder, families, earlier!, first: 0);
            }
            catch (ControlPlaneException e) when (e.Code == ErrorCode.AlreadyExists)
            {
                // taken by another service or import since: a new one
            }
        }
        return await Allocator.AllocateAsync(Holder, families, [], first: 0);
    }

    public async Task DeleteAsync()
    {
        if (State is null)
        {
            return;
        }
        var ips = State.Spec.Ips.ToArray();
        await ClearAsync();
        _withdrawn = ips;
        if (ips.Length > 0) await Allocator.ReleaseAsync(Holder, ips);
    }
}
