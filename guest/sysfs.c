// SPDX-License-Identifier: GPL-2.0-only
/*
 * Attributes of the visible disk (/sys/block/vdX/) and the I/O path
 * policy.  Documented in Documentation/ABI/testing/sysfs-block-virtio-blk.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/blkdev.h>
#include <linux/device.h>
#include <linux/string.h>
#include <linux/sysfs.h>
#include <linux/virtio.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>

#include <uapi/linux/virtio_blk_bio.h>

#include "virtio_blk.h"

static const char *const virtblk_policy_names[] = {
	[VIRTBLK_POLICY_AUTO]		= "auto",
	[VIRTBLK_POLICY_BIO]		= "bio",
	[VIRTBLK_POLICY_REQUEST]	= "request",
};

/**
 * virtblk_parse_policy - parse an io_path value
 * @buf: "auto", "bio" or "request", optionally newline-terminated
 *
 * Return: an enum virtblk_policy, or -EINVAL.
 */
int virtblk_parse_policy(const char *buf)
{
	int i = sysfs_match_string(virtblk_policy_names, buf);

	return i < 0 ? -EINVAL : i;
}

/**
 * virtblk_policy_name - name of an enum virtblk_policy
 * @policy: the policy
 *
 * Return: a static string.
 */
const char *virtblk_policy_name(int policy)
{
	return virtblk_policy_names[policy];
}

/**
 * virtblk_path_name - name of an enum virtblk_path
 * @path: the path
 *
 * Return: a static string.
 */
const char *virtblk_path_name(int path)
{
	return path == VIRTBLK_PATH_BIO ? "bio" : "request";
}

/**
 * virtblk_medium_path - the path auto picks for a medium
 * @medium: the device offers VIRTIO_BLK_F_BIO (reports its medium)
 * @rotation_rate: its rotation_rate field
 * @latency_us: its read_latency_hint field
 * @why: where to put the field that decided, in words
 * @len: room at @why
 *
 * The bio path for a non-rotating medium whose typical read takes at most
 * bio_latency_us, or whose latency is not reported yet (the device may
 * still be measuring it); the request path, whose scheduler sorts and
 * merges, for anything else.  Without the feature, the request path of
 * the in-tree driver.
 *
 * Return: an enum virtblk_path.
 */
int virtblk_medium_path(bool medium, u16 rotation_rate, u32 latency_us,
			char *why, size_t len)
{
	unsigned int limit = READ_ONCE(virtblk_bio_latency_us);

	if (!medium) {
		snprintf(why, len, "device does not offer VIRTIO_BLK_F_BIO");
		return VIRTBLK_PATH_REQUEST;
	}
	if (rotation_rate >= VIRTIO_BLK_ROTATION_MIN_RPM &&
	    rotation_rate <= VIRTIO_BLK_ROTATION_MAX_RPM) {
		snprintf(why, len, "rotation_rate %u rpm (rotating)",
			 rotation_rate);
		return VIRTBLK_PATH_REQUEST;
	}
	if (rotation_rate == VIRTIO_BLK_ROTATION_NOT_REPORTED) {
		snprintf(why, len, "rotation_rate not reported");
		return VIRTBLK_PATH_REQUEST;
	}
	if (rotation_rate != VIRTIO_BLK_ROTATION_NONE) {
		snprintf(why, len, "rotation_rate 0x%04x reserved (not reported)",
			 rotation_rate);
		return VIRTBLK_PATH_REQUEST;
	}
	if (latency_us == VIRTIO_BLK_LATENCY_NOT_REPORTED) {
		snprintf(why, len, "read_latency_hint not reported yet");
		return VIRTBLK_PATH_BIO;
	}
	if (latency_us <= limit) {
		snprintf(why, len, "read_latency_hint %u us <= %u us",
			 latency_us, limit);
		return VIRTBLK_PATH_BIO;
	}
	snprintf(why, len, "read_latency_hint %u us > %u us", latency_us, limit);
	return VIRTBLK_PATH_REQUEST;
}

/* The path @policy selects for the device, and why, into @why */
static int virtblk_policy_path(struct virtio_blk *vblk, int policy,
			       bool by_user, char *why)
{
	/* Zone writes need blk-mq's zone write plugging. */
	if (vblk->zoned) {
		snprintf(why, VIRTBLK_REASON_LEN, "host-managed zoned device");
		return VIRTBLK_PATH_REQUEST;
	}

	if (policy == VIRTBLK_POLICY_AUTO) {
		return virtblk_medium_path(vblk->medium, vblk->rotation_rate,
					   vblk->read_latency_hint, why,
					   VIRTBLK_REASON_LEN);
	}

	snprintf(why, VIRTBLK_REASON_LEN, "%s",
		 by_user ? "io_path written by user" : "io_path module parameter");
	return policy == VIRTBLK_POLICY_BIO ? VIRTBLK_PATH_BIO :
					      VIRTBLK_PATH_REQUEST;
}

/**
 * virtblk_set_why - publish what decided the path, for io_path_reason
 * @vblk: the device
 * @why: the words
 */
void virtblk_set_why(struct virtio_blk *vblk, const char *why)
{
	unsigned long flags;

	spin_lock_irqsave(&vblk->reason_lock, flags);
	strscpy(vblk->why, why, sizeof(vblk->why));
	spin_unlock_irqrestore(&vblk->reason_lock, flags);
}

/**
 * virtblk_reason_show - what decided the path, as io_path_reason shows it
 * @vblk: the device
 * @buf: a sysfs page
 *
 * Return: the bytes written to @buf.
 */
ssize_t virtblk_reason_show(struct virtio_blk *vblk, char *buf)
{
	char why[VIRTBLK_REASON_LEN];
	unsigned long flags;

	spin_lock_irqsave(&vblk->reason_lock, flags);
	memcpy(why, vblk->why, sizeof(why));
	spin_unlock_irqrestore(&vblk->reason_lock, flags);
	return sysfs_emit(buf, "%s\n", why);
}

/**
 * virtblk_select_path - apply a path policy to a device
 * @vblk: the device, with @path_lock held once the disk is live
 * @policy: enum virtblk_policy
 * @by_user: the policy comes from sysfs rather than the module parameter
 *
 * Bios read the path once at submission; those already on the old path
 * complete there.  Both paths reach the same virtqueues, so a flush on
 * either covers every write completed on the other.  A plain disk can
 * only take the request path: see virtblk_reshape() for the other.
 */
void virtblk_select_path(struct virtio_blk *vblk, int policy, bool by_user)
{
	char why[VIRTBLK_REASON_LEN];
	int path = virtblk_policy_path(vblk, policy, by_user, why);

	virtblk_set_why(vblk, why);
	WRITE_ONCE(vblk->policy, policy);
	WRITE_ONCE(vblk->path, path);
}

static ssize_t io_path_show(struct device *dev, struct device_attribute *attr,
			    char *buf)
{
	struct virtio_blk *vblk = dev_to_disk(dev)->private_data;

	return sysfs_emit(buf, "%s\n", virtblk_path_name(READ_ONCE(vblk->path)));
}

/*
 * Switch the path, with @path_lock held.  A bio-capable disk switches at
 * once; a plain disk takes the request path at once and the bio path by
 * being re-created.
 */
static int virtblk_store_path(struct virtio_blk *vblk, int policy)
{
	int old = vblk->path;

	if (vblk->zoned && policy == VIRTBLK_POLICY_BIO) {
		dev_warn(&vblk->vdev->dev,
			 "[%s] host-managed zoned device: the bio path does not handle zones, it stays on the request path\n",
			 vblk->disk->disk_name);
		return -EOPNOTSUPP;
	}

	if (virtblk_plain(vblk) && policy != VIRTBLK_POLICY_REQUEST) {
		char why[VIRTBLK_REASON_LEN];

		if (virtblk_policy_path(vblk, policy, true, why) ==
		    VIRTBLK_PATH_BIO)
			return virtblk_reshape(vblk, policy);
	}

	virtblk_select_path(vblk, policy, true);
	if (old != vblk->path)
		dev_dbg(&vblk->vdev->dev, "%s: io_path %s -> %s\n",
			vblk->disk->disk_name, virtblk_path_name(old),
			virtblk_path_name(vblk->path));
	return 0;
}

static ssize_t io_path_store(struct device *dev, struct device_attribute *attr,
			     const char *buf, size_t count)
{
	struct gendisk *disk = dev_to_disk(dev);
	struct virtio_blk *vblk = disk->private_data;
	int policy = virtblk_parse_policy(buf);
	struct kernfs_node *kn;
	int err;

	if (policy < 0)
		return policy;

	/*
	 * Re-creating the disk removes this very attribute, and removal
	 * waits for the attribute's writers: step out of that wait.  The
	 * disk, and vblk with it, stay referenced until the protection is
	 * restored.
	 */
	kn = sysfs_break_active_protection(&dev->kobj, &attr->attr);
	if (!kn)
		return -ENODEV;

	mutex_lock(&vblk->path_lock);
	/* Removed, or re-created by another writer meanwhile? */
	err = vblk->disk == disk ? virtblk_store_path(vblk, policy) : -ENODEV;
	mutex_unlock(&vblk->path_lock);

	sysfs_unbreak_active_protection(kn);
	return err ? err : count;
}
static DEVICE_ATTR_RW(io_path);

static ssize_t io_path_reason_show(struct device *dev,
				   struct device_attribute *attr, char *buf)
{
	struct virtio_blk *vblk = dev_to_disk(dev)->private_data;

	return virtblk_reason_show(vblk, buf);
}
static DEVICE_ATTR_RO(io_path_reason);

static ssize_t serial_show(struct device *dev, struct device_attribute *attr,
			   char *buf)
{
	struct virtio_blk *vblk = dev_to_disk(dev)->private_data;
	int err;

	/* The serial is not NUL-terminated when it fills the field. */
	BUILD_BUG_ON(PAGE_SIZE <= VIRTIO_BLK_ID_BYTES);
	buf[VIRTIO_BLK_ID_BYTES] = '\0';
	err = virtblk_drv_in(vblk, VIRTIO_BLK_T_GET_ID, 0, buf,
			     VIRTIO_BLK_ID_BYTES);
	if (!err)
		return strlen(buf);
	/* Devices without GET_ID: an empty serial, as in-tree. */
	if (err == -EIO)
		return 0;
	return err;
}
static DEVICE_ATTR_RO(serial);

static const char *const virtblk_cache_types[] = {
	"write through", "write back"
};

static ssize_t cache_type_show(struct device *dev,
			       struct device_attribute *attr, char *buf)
{
	struct virtio_blk *vblk = dev_to_disk(dev)->private_data;

	return sysfs_emit(buf, "%s\n",
			  virtblk_cache_types[virtblk_get_cache_mode(vblk->vdev)]);
}

static ssize_t cache_type_store(struct device *dev,
				struct device_attribute *attr,
				const char *buf, size_t count)
{
	struct virtio_blk *vblk = dev_to_disk(dev)->private_data;
	struct virtio_device *vdev = vblk->vdev;
	int i;

	if (!virtio_has_feature(vdev, VIRTIO_BLK_F_CONFIG_WCE))
		return -EINVAL;
	i = sysfs_match_string(virtblk_cache_types, buf);
	if (i < 0)
		return i;

	virtio_cwrite8(vdev, offsetof(struct virtio_blk_config, wce), i);
	virtblk_update_cache_mode(vblk);
	return count;
}
static DEVICE_ATTR_RW(cache_type);

/*
 * The disk's command timeout, in ms, as queue/io_timeout of a blk-mq
 * disk: a bio-based vdX has none.  It applies to both paths: the bio
 * path's watchdog and the hidden disk's requests.
 */
static ssize_t io_timeout_show(struct device *dev,
			       struct device_attribute *attr, char *buf)
{
	struct virtio_blk *vblk = dev_to_disk(dev)->private_data;

	return sysfs_emit(buf, "%u\n",
			  jiffies_to_msecs(READ_ONCE(vblk->io_timeout)));
}

static ssize_t io_timeout_store(struct device *dev,
				struct device_attribute *attr,
				const char *buf, size_t count)
{
	struct virtio_blk *vblk = dev_to_disk(dev)->private_data;
	unsigned int ms;
	int err;

	err = kstrtouint(buf, 10, &ms);
	if (err)
		return err;
	if (!ms)
		return -EINVAL;

	WRITE_ONCE(vblk->io_timeout, msecs_to_jiffies(ms));
	/* Removal of vdX waits for this writer: the hidden disk is there. */
	blk_queue_rq_timeout(vblk->mq_disk->queue, msecs_to_jiffies(ms));
	return count;
}
static DEVICE_ATTR_RW(io_timeout);

static struct attribute *virtblk_attrs[] = {
	&dev_attr_serial.attr,
	&dev_attr_io_timeout.attr,
	&dev_attr_cache_type.attr,
	&dev_attr_io_path.attr,
	&dev_attr_io_path_reason.attr,
	NULL,
};

static umode_t virtblk_attrs_are_visible(struct kobject *kobj,
					 struct attribute *a, int n)
{
	struct gendisk *disk = dev_to_disk(kobj_to_dev(kobj));
	struct virtio_blk *vblk = disk->private_data;

	if (a == &dev_attr_cache_type.attr &&
	    !virtio_has_feature(vblk->vdev, VIRTIO_BLK_F_CONFIG_WCE))
		return 0444;
	/* A blk-mq vdX has queue/io_timeout. */
	if (a == &dev_attr_io_timeout.attr && disk == vblk->mq_disk)
		return 0;
	return a->mode;
}

static const struct attribute_group virtblk_attr_group = {
	.attrs		= virtblk_attrs,
	.is_visible	= virtblk_attrs_are_visible,
};

const struct attribute_group *virtblk_attr_groups[] = {
	&virtblk_attr_group,
	NULL,
};

/*
 * The same io_path, and the serial to match it by, on the virtio device
 * (/sys/bus/virtio/devices/virtioN/).  Events of the virtio device come
 * before those of its disk, which udev holds open while it handles them:
 * a udev rule there can re-create a plain disk before anything opens it.
 * The driver core removes these before ->remove, waiting for writers.
 */
static ssize_t vdev_io_path_show(struct device *dev,
				 struct device_attribute *attr, char *buf)
{
	struct virtio_blk *vblk = dev_to_virtio(dev)->priv;

	return sysfs_emit(buf, "%s\n", virtblk_path_name(READ_ONCE(vblk->path)));
}

static ssize_t vdev_io_path_store(struct device *dev,
				  struct device_attribute *attr,
				  const char *buf, size_t count)
{
	struct virtio_blk *vblk = dev_to_virtio(dev)->priv;
	int policy = virtblk_parse_policy(buf);
	int err;

	if (policy < 0)
		return policy;

	mutex_lock(&vblk->path_lock);
	err = vblk->disk ? virtblk_store_path(vblk, policy) : -ENODEV;
	mutex_unlock(&vblk->path_lock);
	return err ? err : count;
}

static struct device_attribute dev_attr_vdev_io_path =
	__ATTR(io_path, 0644, vdev_io_path_show, vdev_io_path_store);

static ssize_t vdev_serial_show(struct device *dev,
				struct device_attribute *attr, char *buf)
{
	struct virtio_blk *vblk = dev_to_virtio(dev)->priv;
	ssize_t ret;

	/* The disk, whose queue GET_ID goes through, may be re-created. */
	mutex_lock(&vblk->path_lock);
	ret = vblk->disk ? serial_show(disk_to_dev(vblk->disk), attr, buf) :
			   -ENODEV;
	mutex_unlock(&vblk->path_lock);
	return ret;
}

static struct device_attribute dev_attr_vdev_serial =
	__ATTR(serial, 0444, vdev_serial_show, NULL);

static struct attribute *virtblk_vdev_attrs[] = {
	&dev_attr_vdev_io_path.attr,
	&dev_attr_vdev_serial.attr,
	NULL,
};

static const struct attribute_group virtblk_vdev_attr_group = {
	.attrs		= virtblk_vdev_attrs,
};

const struct attribute_group *virtblk_vdev_attr_groups[] = {
	&virtblk_vdev_attr_group,
	NULL,
};
