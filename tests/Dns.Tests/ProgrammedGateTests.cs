using ControlPlane.Dns.Feed;
using Microsoft.Extensions.Time.Testing;

namespace ControlPlane.Dns.Tests;

/// <summary>Convergence-aware publishing: pure logic on a fake clock.</summary>
public sealed class ProgrammedGateTests
{
    private readonly FakeTimeProvider _time = new();

    [Fact]
    public void An_object_waits_for_its_programmed_event()
    {
        var gate = new ProgrammedGate(TimeSpan.FromSeconds(2), _time);
        Assert.False(gate.Ready("e:x/a", 10));
        gate.Programmed("e:x/a", 9);
        Assert.False(gate.Ready("e:x/a", 10));
        gate.Programmed("e:x/a", 12);
        Assert.True(gate.Ready("e:x/a", 10));
        Assert.Equal(0, gate.LatePublishes);
    }

    [Fact]
    public void The_bound_publishes_anyway_and_counts_it_once()
    {
        var gate = new ProgrammedGate(TimeSpan.FromSeconds(2), _time);
        Assert.False(gate.Ready("s:x/web", 5));
        Assert.Equal(TimeSpan.FromSeconds(2), gate.NextBound());
        _time.Advance(TimeSpan.FromMilliseconds(1999));
        Assert.False(gate.Ready("s:x/web", 5));
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.True(gate.Ready("s:x/web", 5));
        Assert.True(gate.Ready("s:x/web", 5));
        Assert.Equal(1, gate.LatePublishes);
        Assert.Null(gate.NextBound());
    }

    [Fact]
    public void New_addresses_start_the_bound_again_and_listed_objects_need_no_wait()
    {
        var gate = new ProgrammedGate(TimeSpan.FromSeconds(2), _time);
        gate.Published("e:x/a", 7);
        Assert.True(gate.Ready("e:x/a", 7));
        _time.Advance(TimeSpan.FromSeconds(5));
        Assert.False(gate.Ready("e:x/a", 8));
        gate.Removed("e:x/a");
        Assert.False(gate.Ready("e:x/a", 7));
    }
}
