namespace ControlPlane.Storage;

public enum ChangeType : byte
{
    Added = 1,
    Modified = 2,
    Deleted = 3,
}
