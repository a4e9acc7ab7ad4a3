namespace ControlPlane.Grains.Ipam;

public enum RequestOutcome
{
    /// <summary>The address is now held by the requester.</summary>
    Taken,
    /// <summary>The address lies outside the pool's network.</summary>
    Outside,
    /// <summary>The network address, the gateway, the IPv4 broadcast, or a block's first (VTEP) address.</summary>
    Reserved,
    /// <summary>Another holder has it (<see cref="RequestResult.Who"/>).</summary>
    Held,
    /// <summary>It lies in a block of another node (<see cref="RequestResult.Who"/>).</summary>
    OtherNode,
    /// <summary>It lies in a block no node holds yet (<see cref="RequestResult.Block"/>).</summary>
    BlockFree,
}

/// <summary>What a request for one particular address came to.</summary>
public readonly record struct RequestResult(RequestOutcome Outcome, string? Who = null, IpPrefix? Block = null);
