using System.Globalization;
using System.Security.Cryptography;

namespace ControlPlane.Storage;

/// <summary>The random identity a store is given once, kept in its meta table as 16 hex digits.</summary>
internal static class StoreIdentity
{
    public static string New() => BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(sizeof(ulong))).ToString("x16", CultureInfo.InvariantCulture);

    public static ulong Parse(string stored) => ulong.Parse(stored, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);
}
