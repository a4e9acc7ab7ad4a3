using System.Net;
using ControlPlane.Contracts.Updates;
using ControlPlane.Contracts.V1;
using ControlPlane.Grains.Ipam;
using ControlPlane.Grains.State;
using ControlPlane.Storage.Errors;

namespace ControlPlane.Grains.Resources;

/// <summary>
/// A network: its immutable VNI and address ranges, its MTU, and its IPAM. Its VNI and ranges are
/// claims in the store, which refuses a network that would share a VNI or overlap another's range.
/// Block assignments are part of the network's state; which addresses are held (and by whom) is
/// rebuilt from the store's claims when first needed, so an address is durable exactly when the
/// endpoint holding it is, and an address whose endpoint never committed is free after a crash.
/// </summary>
[GrainType(Kinds.Network)]
internal sealed class NetworkGrain(ObjectServices services) : ResourceGrain<Network>(services), INetworkGrain
{
    private const uint MaxVni = (1 << 24) - 1;
    private List<BlockPool>? _pools;
    // The ranges of the create in progress, to name the one the store refuses.
    private List<IpPrefix> _creating = [];

    protected override bool Namespaced => false;

    protected override ObjectMeta MetaOf(Network resource) => resource.Metadata ??= new ObjectMeta();

    protected override (string Namespace, string Index) Describe(Network state) => (string.Empty, Key);

    protected override void Validate(Network resource)
    {
        var spec = resource.Spec ?? throw ControlPlaneException.Invalid("spec", "is required");
        if (spec.Vni is 0 or > MaxVni)
        {
            throw ControlPlaneException.Invalid("spec.vni", $"{spec.Vni} is outside 1..{MaxVni}");
        }
        if (spec.Ipv4Cidr.Length == 0)
        {
            throw ControlPlaneException.Invalid("spec.ipv4_cidr", "is required");
        }
        CheckRange("spec.ipv4_cidr", spec.Ipv4Cidr, System.Net.Sockets.AddressFamily.InterNetwork, spec.Ipv4BlockPrefixLength, "spec.ipv4_block_prefix_length");
        if (spec.Ipv6Cidr.Length > 0)
        {
            CheckRange("spec.ipv6_cidr", spec.Ipv6Cidr, System.Net.Sockets.AddressFamily.InterNetworkV6, spec.Ipv6BlockPrefixLength, "spec.ipv6_block_prefix_length");
        }
        else if (spec.Ipv6BlockPrefixLength != 0)
        {
            throw ControlPlaneException.Invalid("spec.ipv6_block_prefix_length", "is set but the network has no spec.ipv6_cidr");
        }
        var minimum = spec.Ipv6Cidr.Length > 0 ? 1280u : 576u;
        if (spec.Mtu != 0 && (spec.Mtu < minimum || spec.Mtu > 9000))
        {
            throw ControlPlaneException.Invalid("spec.mtu", $"{spec.Mtu} is outside {minimum}..9000");
        }
    }

    /// <summary>
    /// A range must be of its field's family, leave room for a block (at most /30 or /126) and
    /// overlap no special range (loopback, link-local, multicast, ...). Blocks lie between the
    /// network's own length (one block for one node) and the longest: the data path routes any of
    /// them, one route per remote block. The rule is shared with netctl (<see cref="AddressRules.NetworkRange"/>).
    /// </summary>
    private static void CheckRange(string field, string cidr, System.Net.Sockets.AddressFamily family, uint blockLength, string blockField) =>
        AddressInput.Require(AddressRules.NetworkRange(field, cidr, family, blockLength, blockField));

    /// <summary>The block length of a network that names none: /26 and /122, or the whole network when it is smaller.</summary>
    private static uint DefaultBlock(IpPrefix prefix) =>
        (uint)Math.Max(prefix.Family == System.Net.Sockets.AddressFamily.InterNetwork ? 26 : 122, prefix.Length);

    protected override Task<Reservation> PrepareCreateAsync(Network resource)
    {
        var spec = resource.Spec;
        var v4 = AddressInput.ParsePrefix("spec.ipv4_cidr", spec.Ipv4Cidr);
        spec.Ipv4BlockPrefixLength = spec.Ipv4BlockPrefixLength == 0 ? DefaultBlock(v4) : spec.Ipv4BlockPrefixLength;
        // The anycast gateway is the first host address of each range, the same on every node.
        resource.Status = new NetworkStatus { Mtu = EffectiveMtu(spec), Ipv4Gateway = v4.AddressAt(1).ToString() };
        var ranges = new List<IpPrefix> { v4 };
        if (spec.Ipv6Cidr.Length > 0)
        {
            var v6 = AddressInput.ParsePrefix("spec.ipv6_cidr", spec.Ipv6Cidr);
            spec.Ipv6BlockPrefixLength = spec.Ipv6BlockPrefixLength == 0 ? DefaultBlock(v6) : spec.Ipv6BlockPrefixLength;
            resource.Status.Ipv6Gateway = v6.AddressAt(1).ToString();
            ranges.Add(v6);
        }
        _creating = ranges;
        foreach (var range in ranges)
        {
            foreach (var service in ServiceRanges().Where(s => s.Overlaps(range)))
            {
                throw new ControlPlaneException(ErrorCode.FailedPrecondition, $"{range} overlaps the service range {service}", FieldOf(range));
            }
        }
        _pools = null;
        // The store refuses a VNI or a range another network holds: no registry to keep in memory.
        return Task.FromResult(new Reservation([Claims.Vni(spec.Vni), .. ranges.Select(Claims.Range)]));
    }

    protected override ControlPlaneException ClaimRefused(ClaimTakenException refused)
    {
        var (claim, holder) = (refused.Holder.Claim, refused.Holder.Key);
        return claim.Scope == Claims.VniScope
            ? new ControlPlaneException(ErrorCode.FailedPrecondition, $"VNI {claim.Describe()} is already used by network '{holder}'", "spec.vni")
            : new ControlPlaneException(ErrorCode.FailedPrecondition, $"{OverlappingRange(claim)} overlaps {Claims.RangeOf(claim)} of {HolderOf(refused.Holder)}",
                Claims.AddressOf(claim).AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? "spec.ipv4_cidr" : "spec.ipv6_cidr");
    }

    /// <summary>This network's range that meets a held one ("the range" when it cannot be told).</summary>
    private string OverlappingRange(Storage.Claim held)
    {
        var other = Claims.RangeOf(held);
        return _creating.FirstOrDefault(r => r.Overlaps(other)) is { Length: > 0 } ours ? $"the range {ours}" : "the range";
    }

    private static string HolderOf(Storage.ClaimHolder holder) => holder.Kind == Kinds.ClusterPeer
        ? $"peer cluster '{holder.Key}'"
        : $"network '{holder.Key}'";

    private static string FieldOf(IpPrefix range) =>
        range.Family == System.Net.Sockets.AddressFamily.InterNetwork ? "spec.ipv4_cidr" : "spec.ipv6_cidr";

    private IEnumerable<IpPrefix> ServiceRanges() =>
        new[] { Services.Options.ServiceIpv4Cidr, Services.Options.ServiceIpv6Cidr }.Where(c => c.Length > 0).Select(c => AddressInput.ParsePrefix("service range", c));

    protected override Network Merge(Network current, Network requested)
    {
        if (FixedFields.Changed(current, requested) is { } fixedField) throw ControlPlaneException.Invalid(fixedField.Field, fixedField.Reason);
        var now = requested.Spec;
        current.Metadata.Labels.Clear();
        current.Metadata.Labels.Add(requested.Metadata.Labels);
        current.Spec.Mtu = now.Mtu;
        current.Status.Mtu = EffectiveMtu(current.Spec);
        return current;
    }

    protected override async Task CheckDeleteAsync(Network current)
    {
        var holders = (await Store.ListClaimsAsync(Claims.AddressScope(Key))).Select(h => h.Key).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        if (holders.Count > 0)
        {
            var count = holders.Count == 1 ? "1 endpoint" : $"{holders.Count} endpoints";
            throw new ControlPlaneException(ErrorCode.FailedPrecondition,
                $"network '{Key}' still has {count} holding addresses (first '{holders[0]}'); delete its endpoints first");
        }
        // Services refer to their network (a reference claim, checked again at the commit); this
        // also finds services made before those claims existed.
        if (await FirstReferrerAsync(Kinds.Service, Service.Parser, s => s.Spec?.Network == Key) is { } service)
        {
            throw StillReferenced(Kinds.Service, service);
        }
    }

    protected override ControlPlaneException StillReferenced(string kind, string key) =>
        new(ErrorCode.FailedPrecondition, $"network '{Key}' is still used by {kind} '{key}'; delete it first");

    protected override Task AfterDeleteAsync(Network deleted)
    {
        _pools = null;
        return Task.CompletedTask;
    }

    public async Task<AddressAssignment> AllocateAsync(string node, string holder, string[] requested)
    {
        var rebuilt = _pools is null;
        try
        {
            return await AllocateOnceAsync(node, holder, requested);
        }
        catch (ControlPlaneException e) when (e.Code == ErrorCode.ResourceExhausted && !rebuilt)
        {
            // Addresses held in memory only, by creates that never committed (their silo died
            // between this call and their commit), are not lost for good: the pools are rebuilt
            // from the store, which has every committed address, and the allocation tried again.
            _pools = null;
            return await AllocateOnceAsync(node, holder, requested);
        }
    }

    private async Task<AddressAssignment> AllocateOnceAsync(string node, string holder, string[] requested)
    {
        if (State is null)
        {
            throw MissingReference(Kinds.Network, Key);
        }
        var pools = await PoolsAsync();
        var wanted = requested.Select(IPAddress.Parse).ToArray();
        for (var i = 0; i < wanted.Length; i++)
        {
            if (!pools.Any(p => p.Family == wanted[i].AddressFamily))
            {
                throw ControlPlaneException.Invalid($"spec.ips[{i}]", $"{wanted[i]} is of a family network '{Key}' has no range for");
            }
        }
        var ips = new List<IPAddress>(2);
        var opened = new List<AddressBlock>();
        try
        {
            foreach (var pool in pools)
            {
                var index = Array.FindIndex(wanted, a => a.AddressFamily == pool.Family);
                ips.Add(index >= 0
                    ? await TakeRequestedAsync(pool, wanted[index], $"spec.ips[{index}]", node, holder, opened)
                    : pool.TryAllocate(node, holder) ?? AllocateFromNewBlock(pool, node, holder, opened));
            }
            if (opened.Count > 0)
            {
                // The blocks this call opened become the node's, durably, in one commit, and only
                // once every family's address is settled: a request refused for its second address
                // (held, or in another node's block) leaves no block behind.
                var updated = State.Clone();
                updated.Status.Blocks.Add(opened);
                await CommitAsync(updated);
            }
            var status = State.Status;
            return new AddressAssignment([.. ips.Select(ip => ip.ToString())], status.Ipv4Gateway, status.Ipv6Gateway, status.Mtu);
        }
        catch
        {
            if (opened.Count > 0)
            {
                // Blocks assigned in memory and never made durable: rebuild from the store on the next call.
                _pools = null;
            }
            else
            {
                // The addresses already taken in this call go back.
                ips.ForEach(ip => _pools?.ForEach(p => p.Release(ip, holder)));
            }
            throw;
        }
    }

    /// <summary>
    /// <paramref name="address"/> for <paramref name="holder"/>; a free block it lies in is
    /// assigned to <paramref name="node"/> in memory and added to <paramref name="opened"/>.
    /// An address held here in memory is held by a committed endpoint (the store has its claim)
    /// or by a create that has not committed: one in flight, or one whose silo died between this
    /// call and its commit, which nothing would ever give back (the address stayed refused until
    /// this grain was next rebuilt from the store). The store decides: without its claim the
    /// address is taken over. Should the other create still commit first, this one's commit is
    /// refused for the claim, the pools are rebuilt and the create tried again, which then finds
    /// the claim; should this one commit first, the other is refused and tries again the same way.
    /// </summary>
    private async ValueTask<IPAddress> TakeRequestedAsync(BlockPool pool, IPAddress address, string field, string node, string holder, List<AddressBlock> opened)
    {
        var result = pool.TryTake(address, node, holder);
        if (result.Outcome == RequestOutcome.BlockFree)
        {
            pool.AssignBlock(result.Block!.Value, node);
            opened.Add(new AddressBlock { Cidr = result.Block.Value.ToString(), Node = node });
            result = pool.TryTake(address, node, holder);
        }
        if (result.Outcome == RequestOutcome.Held)
        {
            var claim = Claims.Address(Key, address);
            if (await Store.FindClaimAsync(claim.Scope, claim.Low) is { } durable)
            {
                throw Held(address, durable.Key, field);
            }
            if (result.Who is { } pending) pool.Release(address, pending);
            result = pool.TryTake(address, node, holder);
        }
        return result.Outcome switch
        {
            RequestOutcome.Taken => address,
            RequestOutcome.Outside => throw ControlPlaneException.Invalid(field, $"{address} is outside network '{Key}' ({pool.Network})"),
            RequestOutcome.Reserved => throw ControlPlaneException.Invalid(field,
                $"{address} is reserved in network '{Key}' (its network, gateway or broadcast address, or the first address of a node's block)"),
            RequestOutcome.Held => throw Held(address, result.Who, field),
            _ => throw new ControlPlaneException(ErrorCode.FailedPrecondition,
                $"{address} lies in block {result.Block} of node '{result.Who}'; an endpoint on node '{node}' takes addresses of its node's blocks or of a free block", field),
        };
    }

    private static ControlPlaneException Held(IPAddress address, string? holder, string field) =>
        new(ErrorCode.AlreadyExists, $"{address} is held by Endpoint {holder}", field);

    /// <summary>An address of a free block, which is assigned to <paramref name="node"/> in memory and added to <paramref name="opened"/>.</summary>
    private IPAddress AllocateFromNewBlock(BlockPool pool, string node, string holder, List<AddressBlock> opened)
    {
        var block = pool.TryAssignFreeBlock(node) ?? throw new ControlPlaneException(ErrorCode.ResourceExhausted,
            $"network '{Key}' has no free address for node '{node}' and no free block left", "spec.network");
        opened.Add(new AddressBlock { Cidr = block.ToString(), Node = node });
        // A fresh block always has an address left for an endpoint (BlockPool.LongestBlock).
        return pool.TryAllocate(node, holder) ?? throw new InvalidOperationException($"the new block {block} of network '{Key}' has no free address");
    }

    public Task ReleaseAsync(string holder, string[] ips)
    {
        if (State is not null) BlockPool.Release(_pools, holder, ips);
        return Task.CompletedTask;
    }

    public async Task ReleaseBlocksAsync(string node)
    {
        if (State is null) return;
        var held = (await Store.ListClaimsAsync(Claims.AddressScope(Key))).Select(h => Claims.AddressOf(h.Claim)).ToList();
        var updated = State.Clone();
        var released = updated.Status.Blocks
            .Where(b => b.Node == node && !HoldsAny(AddressInput.ParsePrefix("status.blocks", b.Cidr), held))
            .ToList();
        if (released.Count == 0) return;
        released.ForEach(b => updated.Status.Blocks.Remove(b));
        _pools = null;
        await CommitAsync(updated);
    }

    private static bool HoldsAny(IpPrefix block, List<System.Net.IPAddress> held) =>
        held.Any(a => a.AddressFamily == block.Family && block.Contains(IpPrefix.ToNumber(a)));

    public Task ResyncAsync()
    {
        _pools = null;
        return Task.CompletedTask;
    }

    /// <summary>
    /// The pools: block assignments from the network's own state, held addresses (and their
    /// holders) from the store's claims, which commit with the endpoints that hold them.
    /// </summary>
    private async ValueTask<List<BlockPool>> PoolsAsync()
    {
        if (_pools is not null)
        {
            return _pools;
        }
        var state = RequireState();
        var pools = new List<BlockPool> { new(AddressInput.ParseStoredPrefix("spec.ipv4_cidr", state.Spec.Ipv4Cidr), (int)state.Spec.Ipv4BlockPrefixLength) };
        if (state.Spec.Ipv6Cidr.Length > 0)
        {
            pools.Add(new BlockPool(AddressInput.ParseStoredPrefix("spec.ipv6_cidr", state.Spec.Ipv6Cidr), (int)state.Spec.Ipv6BlockPrefixLength));
        }
        foreach (var block in state.Status.Blocks)
        {
            var prefix = AddressInput.ParsePrefix("status.blocks", block.Cidr);
            pools.First(p => p.GatewayAddress.AddressFamily == prefix.Family).AssignBlock(prefix, block.Node);
        }
        foreach (var held in await Store.ListClaimsAsync(Claims.AddressScope(Key)))
        {
            var address = Claims.AddressOf(held.Claim);
            var holder = held.Key;
            pools.ForEach(p => p.MarkHeld(address, holder));
        }
        return _pools = pools;
    }

    private uint EffectiveMtu(NetworkSpec spec) => spec.Mtu != 0 ? spec.Mtu : (uint)(Services.Options.UnderlayMtu - ControlPlaneOptions.VxlanOverhead);
}
