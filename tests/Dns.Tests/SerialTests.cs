using ControlPlane.Dns.Feed;

namespace ControlPlane.Dns.Tests;

/// <summary>
/// The SOA serial as the feed derives it from the store's position (RFC 1982 arithmetic), in the
/// cases the README describes, a store replaced by a fresh one included.
/// </summary>
public sealed class SerialTests
{
    [Fact]
    public void Serial_FollowsTheStoresPosition_AndKeepsCountingWhenItFallsBehind()
    {
        // First snapshot: the store's position, whatever it is.
        Assert.Equal(1200u, ClusterFeed.NextSerial(null, 1200));
        // The records changed at a later position: that position.
        Assert.Equal(1250u, ClusterFeed.NextSerial(1200, 1250));
        // Published with no new commit (the convergence bound): one more.
        Assert.Equal(1201u, ClusterFeed.NextSerial(1200, 1200));
        // A fresh store behind a running server (position 7 after 1200): the server counts on.
        Assert.Equal(1201u, ClusterFeed.NextSerial(1200, 7));
        // Wrapping past 2^32 is still ahead (RFC 1982).
        Assert.Equal(5u, ClusterFeed.NextSerial(uint.MaxValue - 3, (1UL << 32) + 5));
    }

    /// <summary>
    /// What the README states as the one way down: a server started after the store was replaced
    /// knows only the new store's position, lower than the serial served before.
    /// </summary>
    [Fact]
    public void Serial_AfterAFreshStoreAndARestart_IsTheNewStoresPosition()
    {
        Assert.Equal(7u, ClusterFeed.NextSerial(null, 7));
    }
}
