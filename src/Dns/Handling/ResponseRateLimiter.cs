using System.Numerics;

namespace ControlPlane.Dns.Handling;

/// <summary>What becomes of one UDP response.</summary>
public enum RateLimitDecision
{
    Send,
    /// <summary>Sent truncated (TC set, no records): a real client retries over TCP.</summary>
    Slip,
    Drop,
}

/// <summary>
/// Response rate limiting after BIND's RRL: identical responses to one client prefix (a /24 or
/// /56 by default) are limited to <see cref="ResponseRateLimitOptions.ResponsesPerSecond"/>, so the
/// server cannot be used to reflect a flood at a spoofed address. A response's identity is its
/// name and type for answers and NODATA, and its response code alone for NXDOMAIN and errors (a
/// flood of random names counts as one). Each identity has a credit that refills at the rate,
/// up to one second's worth; every response takes one; below zero responses are dropped, every
/// <see cref="ResponseRateLimitOptions.Slip"/>-th sent truncated instead. The debt is capped at
/// a window's worth, so a flood that stops is forgiven within the window. TCP is never limited
/// (it cannot be spoofed). The table is a fixed array of slots indexed by a keyed hash (a newer
/// key takes over a slot), guarded by striped locks: a check allocates nothing.
/// </summary>
public sealed class ResponseRateLimiter
{
    private const int Stripes = 64;

    private readonly Slot[] _slots;
    private readonly Lock[] _locks;
    private readonly int _mask;
    private readonly double _rate;
    private readonly double _floor;
    private readonly int _slip;
    private readonly UInt128 _ipv4Mask;
    private readonly UInt128 _ipv6Mask;
    private readonly ulong _seed = (ulong)Random.Shared.NextInt64();
    private readonly TimeProvider _time;

    public ResponseRateLimiter(ResponseRateLimitOptions options, TimeProvider time)
    {
        _time = time;
        var size = (int)BitOperations.RoundUpToPowerOf2((uint)Math.Max(1, options.TableSize));
        _slots = new Slot[size];
        _mask = size - 1;
        _locks = [.. Enumerable.Range(0, Stripes).Select(_ => new Lock())];
        _rate = options.ResponsesPerSecond;
        _floor = -options.ResponsesPerSecond * options.Window.TotalSeconds;
        _slip = options.Slip;
        _ipv4Mask = ClientAddress.Mask(options.IPv4PrefixLength, ipv4: true);
        _ipv6Mask = ClientAddress.Mask(options.IPv6PrefixLength, ipv4: false);
    }

    /// <summary>Decides about one response with identity <paramref name="identity"/> (see <see cref="Identity"/>) to <paramref name="client"/>.</summary>
    public RateLimitDecision Check(ClientAddress client, ulong identity)
    {
        var prefix = client.Value & (client.IsIPv4 ? _ipv4Mask : _ipv6Mask);
        var key = Mix(Mix(_seed ^ identity, (ulong)(prefix >> 64)), (ulong)prefix) | 1; // 0 marks an empty slot
        var index = (int)(key >> 32) & _mask;
        var now = _time.GetTimestamp();
        lock (_locks[index & (Stripes - 1)])
        {
            ref var slot = ref _slots[index];
            if (slot.Key != key)
            {
                slot = new Slot { Key = key, Stamp = now, Credit = _rate };
            }
            else
            {
                var elapsed = _time.GetElapsedTime(slot.Stamp, now).TotalSeconds;
                if (elapsed > 0)
                {
                    slot.Credit = Math.Min(_rate, slot.Credit + elapsed * _rate);
                    slot.Stamp = now;
                }
            }
            slot.Credit -= 1;
            if (slot.Credit >= 0) return RateLimitDecision.Send;
            if (slot.Credit < _floor) slot.Credit = _floor;
            slot.Limited++;
            return _slip > 0 && slot.Limited % _slip == 0 ? RateLimitDecision.Slip : RateLimitDecision.Drop;
        }
    }

    /// <summary>
    /// A response's identity: its rcode for NXDOMAIN and errors, else its name (letter case
    /// ignored) and type.
    /// </summary>
    public static ulong Identity(ReadOnlySpan<char> name, ushort type, int rcode)
    {
        var hash = 14695981039346656037UL ^ (ulong)(rcode & 0xFF);
        if (rcode != 0) return Mix(hash, 0xE7_7E_11);
        hash = Mix(hash, type);
        foreach (var c in name)
        {
            hash = (hash ^ (c is >= 'A' and <= 'Z' ? (uint)(c | 0x20) : c)) * 1099511628211UL;
        }
        return hash;
    }

    private static ulong Mix(ulong hash, ulong value)
    {
        hash ^= value + 0x9E3779B97F4A7C15UL + (hash << 6) + (hash >> 2);
        hash ^= hash >> 31;
        hash *= 0xBF58476D1CE4E5B9UL;
        return hash ^ (hash >> 29);
    }

    private struct Slot
    {
        public ulong Key;
        public long Stamp;
        public double Credit;
        public long Limited;
    }
}
