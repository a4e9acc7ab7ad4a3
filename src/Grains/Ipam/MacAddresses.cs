using System.Security.Cryptography;
using System.Text;

namespace ControlPlane.Grains.Ipam;

/// <summary>Deterministic MAC addresses: locally administered unicast, from a hash of a seed.</summary>
public static class MacAddresses
{
    public static string Derive(string seed)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(seed), hash);
        hash[0] = (byte)((hash[0] & 0xFE) | 0x02);
        return string.Create(17, hash[..6].ToArray(), static (span, bytes) =>
        {
            for (var i = 0; i < 6; i++)
            {
                bytes[i].TryFormat(span[(i * 3)..], out _, "x2");
                if (i < 5) span[i * 3 + 2] = ':';
            }
        });
    }
}
