using System.Runtime.InteropServices;
using ControlPlane.Contracts.Policy;

namespace ControlPlane.NodeAgent.Policy;

/// <summary>Peers (an address range), protocols and ports allowed together: one allow-list entry.</summary>
public readonly record struct AllowBox(UInt128 AddressFirst, UInt128 AddressLast, byte ProtocolFirst, byte ProtocolLast, ushort PortFirst, ushort PortLast)
{
    public bool IsPoint => AddressFirst == AddressLast && ProtocolFirst == ProtocolLast && PortFirst == PortLast;

    public static AllowBox Of(AddressRange peers, PortRange ports) => new(peers.First, peers.Last, ports.Protocol, ports.Protocol, ports.First, ports.Last);

    /// <summary>Every protocol and port (a rule without ports).</summary>
    public static AllowBox AnyPort(AddressRange peers) => new(peers.First, peers.Last, 0, byte.MaxValue, 0, ushort.MaxValue);
}

/// <summary>
/// Turns the union of allowed boxes into disjoint entries, as an interval set requires (the kernel
/// refuses overlapping ranges): the address axis is cut where any box starts or ends, each piece
/// gets the union of the protocol/port rectangles covering it, and neighbouring pieces with the
/// same union are joined again. Pure.
/// </summary>
public static class AllowList
{
    private readonly record struct Rect(byte ProtocolFirst, byte ProtocolLast, ushort PortFirst, ushort PortLast);

    public static List<AllowBox> Normalize(List<AllowBox> boxes, bool v6)
    {
        var result = new List<AllowBox>();
        if (boxes.Count == 0) return result;
        boxes.Sort(static (a, b) => a.AddressFirst != b.AddressFirst ? a.AddressFirst.CompareTo(b.AddressFirst) : a.AddressLast.CompareTo(b.AddressLast));
        if (RangesNest(boxes)) return Grouped(boxes, result);
        var top = v6 ? UInt128.MaxValue : uint.MaxValue;
        var points = new List<UInt128>(boxes.Count * 2);
        foreach (var b in boxes)
        {
            points.Add(b.AddressFirst);
            if (b.AddressLast != top) points.Add(b.AddressLast + 1);
        }
        points.Sort();
        var active = new List<AllowBox>();
        var next = 0;
        List<Rect>? profile = null;
        UInt128 start = 0, end = 0;
        for (var i = 0; i < points.Count; i++)
        {
            var p = points[i];
            if (i > 0 && points[i - 1] == p) continue;
            var last = top;
            for (var j = i + 1; j < points.Count; j++)
            {
                if (points[j] != p)
                {
                    last = points[j] - 1;
                    break;
                }
            }
            while (next < boxes.Count && boxes[next].AddressFirst <= p) active.Add(boxes[next++]);
            for (var k = active.Count - 1; k >= 0; k--)
            {
                if (active[k].AddressLast < p) active.RemoveAt(k);
            }
            if (active.Count == 0)
            {
                Flush(result, profile, start, end);
                profile = null;
                continue;
            }
            var current = new List<Rect>();
            Unite(CollectionsMarshal.AsSpan(active), current);
            if (profile is not null && end + 1 == p && profile.SequenceEqual(current))
            {
                end = last;
                continue;
            }
            Flush(result, profile, start, end);
            (profile, start, end) = (current, p, last);
        }
        Flush(result, profile, start, end);
        return result;
    }

    /// <summary>Whether any two address ranges are either the same or apart (sorted by start, then end): the common case.</summary>
    private static bool RangesNest(List<AllowBox> boxes)
    {
        for (var i = 1; i < boxes.Count; i++)
        {
            var (previous, current) = (boxes[i - 1], boxes[i]);
            if (current.AddressFirst == previous.AddressFirst && current.AddressLast == previous.AddressLast) continue;
            if (current.AddressFirst <= previous.AddressLast) return false;
        }
        return true;
    }

    /// <summary>
    /// Normalize when address ranges never partly overlap: each distinct range is one piece, its
    /// boxes' rectangles are united, and neighbouring pieces with the same union are joined.
    /// </summary>
    private static List<AllowBox> Grouped(List<AllowBox> boxes, List<AllowBox> result)
    {
        var span = CollectionsMarshal.AsSpan(boxes);
        List<Rect> previous = [], current = [];
        UInt128 start = 0, end = 0;
        var open = false;
        for (var i = 0; i < span.Length;)
        {
            var j = i + 1;
            while (j < span.Length && span[j].AddressFirst == span[i].AddressFirst && span[j].AddressLast == span[i].AddressLast) j++;
            current.Clear();
            Unite(span[i..j], current);
            if (open && end + 1 == span[i].AddressFirst && previous.SequenceEqual(current))
            {
                end = span[i].AddressLast;
            }
            else
            {
                if (open) Flush(result, previous, start, end);
                (previous, current) = (current, previous);
                (start, end, open) = (span[i].AddressFirst, span[i].AddressLast, true);
            }
            i = j;
        }
        if (open) Flush(result, previous, start, end);
        return result;
    }

    /// <summary>
    /// The union of some boxes' protocol × port rectangles, as disjoint rectangles in a canonical
    /// order, into <paramref name="into"/> (the boxes get reordered). The protocol axis is cut where
    /// a box starts or ends (mostly all boxes share one protocol range: one piece); each piece gets
    /// the merged port ranges of the boxes covering it, and neighbouring pieces with the same ports join.
    /// </summary>
    private static void Unite(Span<AllowBox> boxes, List<Rect> into)
    {
        if (boxes.Length > 1) boxes.Sort(static (a, b) => a.PortFirst.CompareTo(b.PortFirst));
        var cuts = boxes.Length <= 64 ? stackalloc int[2 * boxes.Length] : new int[2 * boxes.Length];
        for (var i = 0; i < boxes.Length; i++) (cuts[2 * i], cuts[2 * i + 1]) = (boxes[i].ProtocolFirst, boxes[i].ProtocolLast + 1);
        cuts.Sort();
        List<(int First, int Last)> previous = [], current = [];
        int runFirst = 0, runEnd = -1; // the protocols [runFirst, runEnd] share `previous`
        var bound = -1;
        foreach (var cut in cuts)
        {
            if (cut == bound) continue;
            if (bound >= 0)
            {
                current.Clear();
                foreach (var b in boxes)
                {
                    if (b.ProtocolFirst > bound || b.ProtocolLast < bound) continue;
                    if (current.Count > 0 && b.PortFirst <= current[^1].Last + 1) current[^1] = (current[^1].First, Math.Max(current[^1].Last, b.PortLast));
                    else current.Add((b.PortFirst, b.PortLast));
                }
                if (runEnd == bound - 1 && previous.SequenceEqual(current))
                {
                    runEnd = cut - 1;
                }
                else
                {
                    Emit(into, previous, runFirst, runEnd);
                    (previous, current) = (current, previous);
                    (runFirst, runEnd) = (bound, cut - 1);
                }
            }
            bound = cut;
        }
        Emit(into, previous, runFirst, runEnd);
    }

    private static void Emit(List<Rect> into, List<(int First, int Last)> ports, int protocolFirst, int protocolLast)
    {
        foreach (var (first, last) in ports) into.Add(new Rect((byte)protocolFirst, (byte)protocolLast, (ushort)first, (ushort)last));
    }

    private static void Flush(List<AllowBox> result, List<Rect>? profile, UInt128 start, UInt128 end)
    {
        if (profile is null) return;
        foreach (var r in profile) result.Add(new AllowBox(start, end, r.ProtocolFirst, r.ProtocolLast, r.PortFirst, r.PortLast));
    }
}
